package iptables

import (
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
