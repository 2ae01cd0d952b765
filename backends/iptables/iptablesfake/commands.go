package iptablesfake

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// maxChainName is the longest chain name iptables accepts
// (XT_EXTENSION_MAXNAMELEN less its NUL).
const maxChainName = 28

// standardTargets are the verdicts every table knows.
var standardTargets = map[string]bool{"ACCEPT": true, "DROP": true, "RETURN": true, "QUEUE": true}

// extensionTargets are the target extensions the fake knows; any other
// target must be a chain of the table, as iptables fails to load an
// extension of that name.
var extensionTargets = map[string]bool{
	"AUDIT": true, "CHECKSUM": true, "CLASSIFY": true, "CONNMARK": true, "CT": true,
	"DNAT": true, "HL": true, "LOG": true, "MARK": true, "MASQUERADE": true,
	"NETMAP": true, "NFLOG": true, "NFQUEUE": true, "NOTRACK": true, "REDIRECT": true,
	"REJECT": true, "SET": true, "SNAT": true, "TCPMSS": true, "TOS": true,
	"TPROXY": true, "TRACE": true, "TTL": true,
}

// optionsWithValue are the rule options whose next word is their value.
var optionsWithValue = map[string]bool{
	"-j": true, "--jump": true, "-g": true, "--goto": true, "-m": true, "--match": true,
	"-p": true, "--protocol": true, "-s": true, "--source": true, "-d": true,
	"--destination": true, "-i": true, "--in-interface": true, "-o": true, "--out-interface": true,
}

// ruleTarget returns the target of a rule's words (-j or -g) and whether
// it is a goto.
func ruleTarget(args []string) (string, bool) {
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "-j", "--jump":
			return args[i+1], false
		case "-g", "--goto":
			return args[i+1], true
		}
	}
	return "", false
}

// checkChainName refuses names iptables refuses.
func checkChainName(name string) error {
	switch {
	case name == "" || len(name) > maxChainName:
		return fmt.Errorf("invalid chain name `%s' (1 to %d characters)", name, maxChainName)
	case name[0] == '-' || name[0] == '!' || strings.ContainsAny(name, " \t\"'"):
		return fmt.Errorf("invalid chain name `%s'", name)
	case standardTargets[name]:
		return fmt.Errorf("chain name `%s' is reserved", name)
	}
	return nil
}

// errNoChain is iptables' message for a missing chain, target or match.
var errNoChain = errors.New("No chain/target/match by that name")

// chain returns the chain name of t, or errNoChain.
func (t *table) chain(name string) (*chain, error) {
	ch := t.chains[name]
	if ch == nil {
		return nil, fmt.Errorf("chain `%s' in table `%s': %w", name, t.name, errNoChain)
	}
	return ch, nil
}

// newRule checks a rule's words as iptables does before it accepts the
// rule: every option that takes a value has one, and the target is a
// verdict, a known extension or a chain of the table.
func (t *table) newRule(args []string) (rule, error) {
	targets := 0
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !optionsWithValue[a] {
			continue
		}
		if i+1 == len(args) {
			return rule{}, fmt.Errorf("option \"%s\" requires an argument", a)
		}
		i++
		switch a {
		case "-j", "--jump", "-g", "--goto":
			targets++
			v := args[i]
			goTo := a == "-g" || a == "--goto"
			switch {
			case targets > 1:
				return rule{}, errors.New("multiple -j or -g flags not allowed")
			case t.chains[v] != nil && t.chains[v].builtin:
				return rule{}, fmt.Errorf("cannot jump to built-in chain `%s'", v)
			case t.chains[v] != nil:
			case goTo:
				return rule{}, fmt.Errorf("goto `%s': %w", v, errNoChain)
			case !standardTargets[v] && !extensionTargets[v]:
				return rule{}, fmt.Errorf("Couldn't load target `%s':No such file or directory", v)
			}
		}
	}
	return rule{text: joinArgs(args), args: args}, nil
}

// command runs one table command (what follows "-t table" on an iptables
// command line, or a line of a restore input) on t.
func (t *table) command(args []string) error {
	if len(args) == 0 {
		return errors.New("no command specified")
	}
	cmd, rest := args[0], args[1:]
	name := ""
	if len(rest) > 0 {
		name = rest[0]
		rest = rest[1:]
	}
	switch cmd {
	case "-A", "--append", "-I", "--insert":
		ch, err := t.chain(name)
		if err != nil {
			return err
		}
		pos := len(ch.rules)
		if cmd == "-I" || cmd == "--insert" {
			pos = 0
			if len(rest) > 0 {
				if n, err := strconv.Atoi(rest[0]); err == nil {
					if n < 1 || n > len(ch.rules)+1 {
						return errors.New("Index of insertion too big")
					}
					pos, rest = n-1, rest[1:]
				}
			}
		}
		r, err := t.newRule(rest)
		if err != nil {
			return err
		}
		// A new slice: the committed table may share the old one.
		ch.rules = slices.Concat(ch.rules[:pos:pos], []rule{r}, ch.rules[pos:])
		return nil
	case "-D", "--delete", "-C", "--check":
		ch, err := t.chain(name)
		if err != nil {
			return err
		}
		i := -1
		if n, err := strconv.Atoi(strings.Join(rest, " ")); err == nil && len(rest) == 1 {
			if n < 1 || n > len(ch.rules) {
				return errors.New("Index of deletion too big")
			}
			i = n - 1
		} else {
			i = slices.IndexFunc(ch.rules, func(r rule) bool { return slices.Equal(r.args, rest) })
		}
		if i < 0 {
			return errors.New("Bad rule (does a matching rule exist in that chain?)")
		}
		if cmd == "-D" || cmd == "--delete" {
			ch.rules = slices.Concat(ch.rules[:i:i], ch.rules[i+1:])
		}
		return nil
	case "-N", "--new-chain":
		if err := checkChainName(name); err != nil {
			return err
		}
		if t.chains[name] != nil {
			return errors.New("Chain already exists")
		}
		t.chains[name] = &chain{}
		return nil
	case "-X", "--delete-chain":
		if name == "" {
			return fmt.Errorf("%w: -X without a chain name", ErrUnsupported)
		}
		ch, err := t.chain(name)
		switch {
		case err != nil:
			return err
		case ch.builtin:
			return fmt.Errorf("cannot delete built-in chain `%s'", name)
		case len(ch.rules) > 0:
			return fmt.Errorf("chain `%s' is not empty: Directory not empty", name)
		case t.references(name) > 0:
			return fmt.Errorf("chain `%s' is referenced by %d rules: Too many links", name, t.references(name))
		}
		delete(t.chains, name)
		return nil
	case "-F", "--flush":
		if name == "" {
			for _, ch := range t.chains {
				ch.rules = nil
			}
			return nil
		}
		ch, err := t.chain(name)
		if err != nil {
			return err
		}
		ch.rules = nil
		return nil
	case "-P", "--policy":
		ch, err := t.chain(name)
		if err != nil {
			return err
		}
		if len(rest) != 1 {
			return errors.New("-P takes a chain and a policy")
		}
		return ch.setPolicy(name, rest[0])
	case "-Z", "--zero":
		return nil // counters are not kept
	}
	return fmt.Errorf("unknown command `%s'", cmd)
}

func (c *chain) setPolicy(name, policy string) error {
	switch {
	case !c.builtin:
		return fmt.Errorf("cannot set the policy of user-defined chain `%s'", name)
	case policy != "ACCEPT" && policy != "DROP":
		return fmt.Errorf("bad policy `%s' for chain `%s'", policy, name)
	}
	c.policy = policy
	return nil
}

// declare runs a restore line ":NAME POLICY [packets:bytes]". A
// user-defined chain is created, or emptied if it exists (which, under
// --noflush, is the only way a restore flushes a chain); a built-in chain
// keeps its rules and takes the policy unless it is "-".
func (t *table) declare(line string) error {
	f := strings.Fields(line[1:])
	if len(f) < 2 || len(f) > 3 {
		return errors.New("chain declaration is not `:NAME POLICY [packets:bytes]'")
	}
	name, policy := f[0], f[1]
	if len(f) == 3 && !validCounters(f[2]) {
		return fmt.Errorf("invalid policy counters `%s' for chain `%s'", f[2], name)
	}
	if ch := t.chains[name]; ch != nil && ch.builtin {
		if policy == "-" {
			return nil
		}
		return ch.setPolicy(name, policy)
	}
	if err := checkChainName(name); err != nil {
		return err
	}
	if policy != "-" {
		return fmt.Errorf("cannot set the policy of user-defined chain `%s'", name)
	}
	t.chains[name] = &chain{}
	return nil
}

// validCounters reports whether s is "[packets:bytes]".
func validCounters(s string) bool {
	inner, ok1 := strings.CutPrefix(s, "[")
	inner, ok2 := strings.CutSuffix(inner, "]")
	if !ok1 || !ok2 {
		return false
	}
	p, b, ok := strings.Cut(inner, ":")
	_, e1 := strconv.ParseUint(p, 10, 64)
	_, e2 := strconv.ParseUint(b, 10, 64)
	return ok && e1 == nil && e2 == nil
}

// splitArgs splits a line into words as iptables-restore does: at blanks,
// except inside double quotes, where \" and \\ stand for themselves.
func splitArgs(line string) ([]string, error) {
	var args []string
	var word strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\'):
			i++
			word.WriteByte(line[i])
		case c == '"':
			quoted, inWord = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				args = append(args, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		args = append(args, word.String())
	}
	return args, nil
}

// joinArgs is the inverse of splitArgs: words with blanks or quotes are
// quoted, as iptables-save quotes them.
func joinArgs(args []string) string {
	var w strings.Builder
	for i, a := range args {
		if i > 0 {
			w.WriteByte(' ')
		}
		if a != "" && !strings.ContainsAny(a, " \t\"\\") {
			w.WriteString(a)
			continue
		}
		w.WriteByte('"')
		for j := 0; j < len(a); j++ {
			if a[j] == '"' || a[j] == '\\' {
				w.WriteByte('\\')
			}
			w.WriteByte(a[j])
		}
		w.WriteByte('"')
	}
	return w.String()
}
