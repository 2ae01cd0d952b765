package iptables

import (
	"slices"
	"strconv"
	"strings"

	"github.com/lbkit/lbkit/servicemap"
)

// A partial sync whose changes touch the dispatch chains (a port added or
// removed, a port losing its last endpoint) used to rewrite those chains
// whole: with 44,000 services, 44,000 lines for one changed service, which
// iptables-nft-restore took minutes to apply. It now edits them: the
// changed ports' old lines are deleted by their rule spec (so a chain that
// is not what the backend left fails the restore, and the next sync is a
// full one), then their new lines inserted at the positions a rewrite
// would give them. The result is the chain a full rewrite writes.

// Edits are used unless a chain would get more than maxEdits of them and
// more than one for every maxEditShare of its lines: rewriting it whole is
// then as cheap.
const (
	maxEdits     = 64
	maxEditShare = 4
)

// portText is a port's dispatch lines before a partial sync changed it.
type portText [numDispatch]string

// changedPort is a port a partial sync removed, rewrote or added: its
// dispatch lines before (nil when it is new), its name, and its index in
// the new ruleset (-1 when it is gone).
type changedPort struct {
	old  *portText
	name servicemap.ServicePortName
	now  int
}

// dispatchEdits returns, per table, the -D and -I lines that turn the
// dispatch chains the backend last wrote into those of rs, given the
// ports that changed; nil when a chain would change too much and is
// better rewritten whole.
func (sp *Spec) dispatchEdits(rs *ruleset, changed []changedPort) map[tableName][]string {
	out := map[tableName][]string{}
	starts := make([]int, len(rs.rules)+1) // line number of each port's first line, from 1
	for d := dispatch(0); d < numDispatch; d++ {
		table, chain := sp.dispatchChain(d)
		starts[0] = 1
		for i, pr := range rs.rules {
			starts[i+1] = starts[i] + strings.Count(pr.text[d], "\n")
		}
		total := starts[len(rs.rules)] - 1
		type insert struct {
			pos  int
			spec string
		}
		var dels []string
		var ins []insert
		for _, c := range changed {
			var before, after string
			if c.old != nil {
				before = c.old[d]
			}
			if c.now >= 0 {
				after = rs.rules[c.now].text[d]
			}
			if before == after {
				continue
			}
			for _, line := range lines(before) {
				dels = append(dels, "-D"+strings.TrimPrefix(line, "-A"))
			}
			for j, line := range lines(after) {
				ins = append(ins, insert{starts[c.now] + j, strings.TrimPrefix(line, "-A "+chain+" ")})
			}
		}
		if n := len(dels) + len(ins); n > maxEdits && n*maxEditShare > total+len(dels) {
			return nil
		}
		// Inserted in ascending position: every line before one is then
		// in place, whether kept or inserted already.
		slices.SortStableFunc(ins, func(a, b insert) int { return a.pos - b.pos })
		out[table] = append(out[table], dels...)
		for _, in := range ins {
			out[table] = append(out[table], "-I "+chain+" "+strconv.Itoa(in.pos)+" "+in.spec)
		}
	}
	return out
}

// lines splits a port's text for one chain into its lines.
func lines(text string) []string {
	if text == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(text, "\n"), "\n")
}
