package iptablesfake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/lbkit/lbkit/backends/iptables"
)

// Fake is the iptables programs and the tables they manage, for both IP
// families, in memory. It implements iptables.Executor.
type Fake struct {
	flavour iptables.Flavour

	mu sync.Mutex
	// tables are the committed tables, [0] IPv4 and [1] IPv6.
	tables [2]map[string]*table
	calls  []Call
	fail   []failure
}

var _ iptables.Executor = (*Fake)(nil)

// Call is one program run the fake answered.
type Call struct {
	// Command is the program and its arguments.
	Command []string
	// Stdin is the input the program read (a restore input), if any.
	Stdin string
	// Err is the error the run returned, nil on success.
	Err error
}

// String returns the command line.
func (c Call) String() string { return strings.Join(c.Command, " ") }

type failure struct {
	prefix string
	err    error
}

// ErrInjected is the error of a run made to fail by FailNext with a nil
// error.
var ErrInjected = errors.New("iptablesfake: injected failure")

// New returns a Fake with empty tables. `iptables --version` answers that
// it is of flavour fl (FlavourAuto: nft). The programs of both flavours
// work on the same tables.
func New(fl iptables.Flavour) *Fake {
	if fl == iptables.FlavourAuto {
		fl = iptables.FlavourNFT
	}
	f := &Fake{flavour: fl}
	for i := range f.tables {
		f.tables[i] = map[string]*table{}
		for name := range builtins {
			f.tables[i][name] = newTable(name)
		}
	}
	return f
}

// FailNext makes the next run whose command line (program and arguments
// joined by spaces) starts with prefix fail with err (ErrInjected when
// err is nil), without effect. Failures queue: each is used once.
func (f *Fake) FailNext(prefix string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = append(f.fail, failure{prefix, err})
}

// TakeCalls returns the runs since the last TakeCalls, in order, and
// clears the log.
func (f *Fake) TakeCalls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = nil
	return out
}

// Save returns what iptables-save (ip6tables-save when ipv6) prints: every
// table a transaction has committed to, in the order filter, nat, mangle,
// raw, security; built-in chains in hook order, then the others sorted,
// each chain's rules in order; counters are always [0:0].
func (f *Fake) Save(ipv6 bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.save(ipv6, "")
}

func (f *Fake) save(ipv6 bool, only string) string {
	var w strings.Builder
	for _, name := range tableOrder {
		t := f.tables[family(ipv6)][name]
		if (only == "" && t.used) || only == name {
			t.save(&w)
		}
	}
	return w.String()
}

func family(ipv6 bool) int {
	if ipv6 {
		return 1
	}
	return 0
}

// Run runs program as the iptables programs would, against the fake's
// tables. It knows:
//
//	iptables|ip6tables[-nft|-legacy] --version
//	iptables|ip6tables[-nft|-legacy] [-w [N]] [-W N] [-t TABLE] COMMAND
//	    with COMMAND one of -S [CHAIN], -A, -I, -D, -C, -N, -X CHAIN, -F, -P, -Z
//	iptables|ip6tables[-nft|-legacy]-save [-t TABLE] [-c]
//	iptables|ip6tables[-nft|-legacy]-restore [-w [N]] [-W N] [-n|--noflush] [-c]
//	nft list chains [ip|ip6]
//
// A restore input that iptables-restore would refuse is refused with an
// error wrapping a *LineError, and nothing of the transaction it was in is
// applied. Other programs fail as if not installed (exec.ErrNotFound),
// other commands and options with ErrUnsupported. An ended ctx fails the
// run as it would kill a process.
func (f *Fake) Run(ctx context.Context, program string, args []string, stdin io.Reader) ([]byte, error) {
	var input []byte
	if stdin != nil {
		var err error
		if input, err = io.ReadAll(stdin); err != nil {
			return nil, fmt.Errorf("%s: reading input: %w", program, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	call := Call{Command: append([]string{program}, args...), Stdin: string(input)}
	out, err := f.injected(call.String())
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		out, err = f.run(program, args, string(input))
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", call, err)
	}
	call.Err = err
	f.calls = append(f.calls, call)
	return out, err
}

func (f *Fake) injected(line string) ([]byte, error) {
	for i, fl := range f.fail {
		if strings.HasPrefix(line, fl.prefix) {
			f.fail = slices.Delete(f.fail, i, i+1)
			if fl.err == nil {
				return nil, ErrInjected
			}
			return nil, fl.err
		}
	}
	return nil, nil
}

func (f *Fake) run(program string, args []string, input string) ([]byte, error) {
	prog := filepath.Base(program)
	if prog == "nft" {
		return f.nftListChains(args)
	}
	var ipv6 bool
	switch {
	case strings.HasPrefix(prog, "ip6tables"):
		ipv6, prog = true, prog[len("ip6tables"):]
	case strings.HasPrefix(prog, "iptables"):
		prog = prog[len("iptables"):]
	default:
		return nil, fmt.Errorf("%w: %s", exec.ErrNotFound, program)
	}
	fl := f.flavour
	for _, p := range []iptables.Flavour{iptables.FlavourNFT, iptables.FlavourLegacy} {
		if rest, ok := strings.CutPrefix(prog, "-"+string(p)); ok {
			fl, prog = p, rest
		}
	}
	if slices.Contains(args, "--version") || slices.Contains(args, "-V") {
		kind := map[iptables.Flavour]string{iptables.FlavourNFT: "nf_tables", iptables.FlavourLegacy: "legacy"}[fl]
		return fmt.Appendf(nil, "iptables v1.8.11 (%s)\n", kind), nil
	}
	opts, rest, err := parseOptions(args)
	if err != nil {
		return nil, err
	}
	tables := f.tables[family(ipv6)]
	switch prog {
	case "-restore":
		if len(rest) > 0 {
			return nil, fmt.Errorf("%w: restore argument %q", ErrUnsupported, rest[0])
		}
		return nil, restore(tables, input, opts.noflush, fl == iptables.FlavourNFT)
	case "-save":
		if len(rest) > 0 {
			return nil, fmt.Errorf("%w: save argument %q", ErrUnsupported, rest[0])
		}
		if opts.table != "" && tables[opts.table] == nil {
			return nil, fmt.Errorf("table `%s' does not exist", opts.table)
		}
		return []byte(f.save(ipv6, opts.table)), nil
	case "":
		return f.command(tables, opts.table, rest)
	}
	return nil, fmt.Errorf("%w: %s", exec.ErrNotFound, program)
}

type options struct {
	table   string
	noflush bool
}

// parseOptions takes the options every program shares out of args.
func parseOptions(args []string) (options, []string, error) {
	var o options
	var rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "-w", "--wait":
			if i+1 < len(args) && args[i+1] != "" && strings.Trim(args[i+1], "0123456789.") == "" {
				i++
			}
		case "-W", "--wait-interval", "-t", "--table":
			if i+1 == len(args) {
				return o, nil, fmt.Errorf("option %q requires an argument", a)
			}
			i++
			if a == "-t" || a == "--table" {
				o.table = args[i]
			}
		case "-n", "--noflush":
			o.noflush = true
		case "-c", "--counters":
		default:
			rest = append(rest, a)
		}
	}
	return o, rest, nil
}

// command runs an iptables command line.
func (f *Fake) command(tables map[string]*table, name string, args []string) ([]byte, error) {
	if name == "" {
		name = "filter"
	}
	t := tables[name]
	if t == nil {
		return nil, fmt.Errorf("can't initialize iptables table `%s': Table does not exist (do you need to insmod?)", name)
	}
	if len(args) > 0 && (args[0] == "-S" || args[0] == "--list-rules") {
		var w strings.Builder
		switch len(args) {
		case 1:
			t.listRules(&w, "")
		case 2:
			if t.chains[args[1]] == nil {
				return nil, fmt.Errorf("iptables: %w.", errNoChain)
			}
			t.listRules(&w, args[1])
		default:
			return nil, fmt.Errorf("%w: -S with %q", ErrUnsupported, args[2:])
		}
		return []byte(w.String()), nil
	}
	if len(args) > 0 && (args[0] == "-L" || args[0] == "--list") {
		return nil, fmt.Errorf("%w: -L (use -S)", ErrUnsupported)
	}
	work := t.clone()
	if err := work.command(args); err != nil {
		return nil, err
	}
	if args[0] != "-C" && args[0] != "--check" {
		work.used = true
		tables[name] = work
	}
	return nil, nil
}

// nftListChains answers `nft list chains [ip|ip6]` for the tables
// iptables-nft made, in nft's format.
func (f *Fake) nftListChains(args []string) ([]byte, error) {
	fams := []string{"ip", "ip6"}
	switch {
	case len(args) == 3 && args[0] == "list" && args[1] == "chains" && slices.Contains(fams, args[2]):
		fams = args[2:]
	case len(args) == 2 && args[0] == "list" && args[1] == "chains":
	default:
		return nil, fmt.Errorf("%w: nft %s", ErrUnsupported, strings.Join(args, " "))
	}
	var w strings.Builder
	for _, fam := range fams {
		for _, name := range tableOrder {
			t := f.tables[family(fam == "ip6")][name]
			if !t.used {
				continue
			}
			fmt.Fprintf(&w, "table %s %s {\n", fam, name)
			for _, c := range t.order() {
				fmt.Fprintf(&w, "\tchain %s {\n", c)
				if ch := t.chains[c]; ch.builtin {
					hook := fmt.Sprintf(hooks[name], strings.ToLower(c))
					switch {
					case name == "nat":
						hook = fmt.Sprintf(hooks[name], strings.ToLower(c), natPriority[c])
					case name == "mangle" && c == "OUTPUT":
						hook = "type route hook output priority mangle"
					}
					fmt.Fprintf(&w, "\t\t%s; policy %s;\n", hook, strings.ToLower(ch.policy))
				}
				w.WriteString("\t}\n")
			}
			w.WriteString("}\n")
		}
	}
	return []byte(w.String()), nil
}
