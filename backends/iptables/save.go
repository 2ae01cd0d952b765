package iptables

import (
	"context"
	"strings"
)

// saved is what iptables-save shows of one table that concerns lbkit.
type saved struct {
	// chains are the lbkit chains that exist.
	chains map[string]bool
	// jumps are the rules in built-in chains that jump to an lbkit chain,
	// as "CHAIN SPEC" (the -A line without "-A ").
	jumps []string
}

// parseSave reads iptables-save output for one table.
func parseSave(out []byte, prefix string) saved {
	s := saved{chains: map[string]bool{}}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, ":"+prefix+"-"):
			name, _, _ := strings.Cut(line[1:], " ")
			s.chains[name] = true
		case strings.HasPrefix(line, "-A ") && !strings.HasPrefix(line, "-A "+prefix+"-"):
			if strings.Contains(line, " -j "+prefix+"-") {
				s.jumps = append(s.jumps, strings.TrimPrefix(line, "-A "))
			}
		}
	}
	return s
}

// hasJump reports whether a jump rule equivalent to j exists. iptables-save
// may reorder and requote matches, so it compares the built-in chain and
// the target only.
func (s saved) hasJump(j jumpRule) bool {
	target := j.spec[strings.LastIndex(j.spec, " -j ")+4:]
	for _, line := range s.jumps {
		chain, rest, _ := strings.Cut(line, " ")
		if chain == j.chain && strings.HasSuffix(rest, "-j "+target) {
			return true
		}
	}
	return false
}

// builtinChains are the built-in chains lbkit hooks into, by table.
var builtinChains = map[tableName][]string{
	tableNAT:    {"PREROUTING", "OUTPUT", "POSTROUTING"},
	tableFilter: {"INPUT", "FORWARD", "OUTPUT"},
}

// inspect reads what exists of lbkit in one table. With the legacy flavour
// iptables-save is fast; with the nft flavour it translates every rule of
// the table back to iptables syntax, which took minutes at 10,000 services
// here, so chain names come from `nft list chains` and jump rules from
// `iptables -S` of the few built-in chains instead.
func (b *Backend) inspect(ctx context.Context, progs programs, table tableName, ipv6 bool) (saved, error) {
	if b.flavour == FlavourLegacy {
		out, err := b.exec.Run(ctx, progs.save, []string{"-t", string(table)}, nil)
		if err != nil {
			return saved{}, err
		}
		return parseSave(out, b.spec.Prefix), nil
	}
	s := saved{chains: map[string]bool{}}
	family := "ip"
	if ipv6 {
		family = "ip6"
	}
	out, err := b.exec.Run(ctx, "nft", []string{"list", "chains", family}, nil)
	if err != nil {
		return saved{}, err
	}
	inTable := false
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "table":
			inTable = f[2] == string(table)
		case inTable && len(f) >= 2 && f[0] == "chain" && strings.HasPrefix(f[1], b.spec.Prefix+"-"):
			s.chains[f[1]] = true
		}
	}
	for _, chain := range builtinChains[table] {
		out, err := b.exec.Run(ctx, progs.iptables, append(b.opts.wait(), "-t", string(table), "-S", chain), nil)
		if err != nil {
			continue // the chain does not exist yet in a fresh table
		}
		s.jumps = append(s.jumps, parseSave(out, b.spec.Prefix).jumps...)
	}
	return s, nil
}
