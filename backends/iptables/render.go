package iptables

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/servicemap"
)

// tableName is "nat" or "filter".
type tableName string

const (
	tableNAT    tableName = "nat"
	tableFilter tableName = "filter"
)

// dispatchChain returns the table and name of a dispatch chain.
func (sp *Spec) dispatchChain(d dispatch) (tableName, string) {
	if d == natServices || d == natNodePorts {
		return tableNAT, sp.Prefix + dispatchSuffix[d]
	}
	return tableFilter, sp.Prefix + dispatchSuffix[d]
}

// jumpRule is a rule in a built-in chain that sends traffic into lbkit's
// chains. Spec is the rule without "-A CHAIN".
type jumpRule struct {
	table tableName
	chain string
	spec  string
}

// jumps lists the rules lbkit keeps in built-in chains, as kube-proxy hooks
// its own: nat PREROUTING/OUTPUT/POSTROUTING, and filter INPUT/FORWARD/OUTPUT
// for firewall, reject/drop and health-check rules.
func (sp *Spec) jumps() []jumpRule {
	p := sp.Prefix
	newConn := "-m conntrack --ctstate NEW "
	return []jumpRule{
		{tableNAT, "PREROUTING", `-m comment --comment "lbkit service portals" -j ` + p + "-SERVICES"},
		{tableNAT, "OUTPUT", `-m comment --comment "lbkit service portals" -j ` + p + "-SERVICES"},
		{tableNAT, "POSTROUTING", `-m comment --comment "lbkit postrouting rules" -j ` + p + "-POSTROUTING"},
		{tableFilter, "INPUT", newConn + `-m comment --comment "lbkit load balancer firewall" -j ` + p + "-FIREWALL"},
		{tableFilter, "INPUT", `-m comment --comment "lbkit health check service ports" -j ` + p + "-NODEPORTS"},
		{tableFilter, "INPUT", newConn + `-m comment --comment "lbkit externally-visible service portals" -j ` + p + "-EXTERNAL-SERVICES"},
		{tableFilter, "FORWARD", newConn + `-m comment --comment "lbkit load balancer firewall" -j ` + p + "-FIREWALL"},
		{tableFilter, "FORWARD", newConn + `-m comment --comment "lbkit service portals" -j ` + p + "-SERVICES"},
		{tableFilter, "FORWARD", newConn + `-m comment --comment "lbkit externally-visible service portals" -j ` + p + "-EXTERNAL-SERVICES"},
		{tableFilter, "OUTPUT", newConn + `-m comment --comment "lbkit load balancer firewall" -j ` + p + "-FIREWALL"},
		{tableFilter, "OUTPUT", newConn + `-m comment --comment "lbkit service portals" -j ` + p + "-SERVICES"},
	}
}

// fixedChain is a chain whose rules do not depend on services.
type fixedChain struct {
	name  string
	rules []string
}

// fixedChains returns, by table, the chains whose rules do not depend on
// services.
func (sp *Spec) fixedChains() map[tableName][]fixedChain {
	p := sp.Prefix
	mark := fmt.Sprintf("0x%x", sp.MasqueradeMark)
	canary := fixedChain{name: p + "-CANARY", rules: []string{fmt.Sprintf("-A %s-CANARY -j RETURN", p)}}
	return map[tableName][]fixedChain{
		tableNAT: {
			{name: p + "-MARK-MASQ", rules: []string{fmt.Sprintf("-A %s-MARK-MASQ -j MARK --or-mark %s", p, mark)}},
			{name: p + "-POSTROUTING", rules: []string{
				fmt.Sprintf("-A %s-POSTROUTING -m mark ! --mark %s/%s -j RETURN", p, mark, mark),
				fmt.Sprintf("-A %s-POSTROUTING -j MARK --xor-mark %s", p, mark),
				fmt.Sprintf(`-A %s-POSTROUTING -m comment --comment "lbkit service traffic requiring SNAT" -j MASQUERADE --random-fully`, p),
			}},
			canary,
		},
		tableFilter: {canary},
	}
}

// nodePortJumps are the last rules of nat SERVICES: traffic to a local
// address (never loopback, CVE-2020-8558), optionally within
// NodePortAddresses, goes on to NODEPORTS. A rule takes one -d, so with
// NodePortAddresses each prefix gets a jump of its own and loopback, when
// a prefix reaches into it, returns before them. Prefixes of the whole
// family, or none of this family, mean every local address, as in
// kube-proxy.
func (sp *Spec) nodePortJumps(f family) []string {
	head := fmt.Sprintf("-A %s-SERVICES -m comment --comment %s", sp.Prefix,
		`"lbkit service nodeports; NOTE: this must be the last rule in this chain"`)
	tail := " -m addrtype --dst-type LOCAL -j " + sp.Prefix + "-NODEPORTS"
	if f.nodePortsAll {
		return []string{head + " ! -d " + f.loopback.String() + tail}
	}
	var out []string
	if slices.ContainsFunc(f.nodePorts, f.loopback.Overlaps) {
		out = append(out, fmt.Sprintf(`-A %s-SERVICES -m comment --comment "lbkit no nodeports on loopback" -d %s -j RETURN`,
			sp.Prefix, f.loopback))
	}
	for _, cidr := range f.nodePorts {
		out = append(out, head+" -d "+cidr.String()+tail)
	}
	return out
}

// ruleset is the whole desired state for one family, built from a snapshot.
type ruleset struct {
	family family
	ports  []*servicemap.ServicePort // sorted by name
	rules  []*portRules              // rules[i] belongs to ports[i]
}

// build decides the rules of every port of snap, on up to GOMAXPROCS
// goroutines, reusing those of ports that previous holds (the same
// *ServicePort is the same port, unchanged).
func (sp *Spec) build(snap *servicemap.Snapshot, previous *ruleset) *ruleset {
	rs := &ruleset{
		family: sp.family(snap.IPFamily() == v1.IPv6Protocol),
		ports:  snap.Ports(),
	}
	rs.rules = make([]*portRules, len(rs.ports))
	var todo []int
	if previous != nil && previous.family.ipv6 == rs.family.ipv6 {
		// Both lists are sorted by name: walk them side by side.
		j := 0
		for i, p := range rs.ports {
			for j < len(previous.ports) && previous.ports[j].Name.Compare(p.Name) < 0 {
				j++
			}
			if j < len(previous.ports) && previous.ports[j] == p {
				rs.rules[i] = previous.rules[j]
			} else {
				todo = append(todo, i)
			}
		}
	} else {
		todo = make([]int, len(rs.ports))
		for i := range todo {
			todo[i] = i
		}
	}
	fresh := make([]portRules, len(todo))
	inParallel(len(todo), 64, func() func(start, end int) {
		var pl planner
		return func(start, end int) {
			for k := start; k < end; k++ {
				i := todo[k]
				sp.rulesFor(rs.ports[i], &rs.family, &pl, &fresh[k])
				rs.rules[i] = &fresh[k]
			}
		}
	})
	return rs
}

// Render returns the complete iptables-restore input (for `iptables-restore
// --noflush`) that programs snap: every lbkit chain declared and filled,
// both tables. It is a pure function of its arguments and sorts everything,
// so the output is stable. The jumps from built-in chains are not part of
// it: Sync inserts them once, where missing. spec is rendered as given,
// unchecked: its callers may call spec.Validate.
func Render(snap *servicemap.Snapshot, spec Spec) string {
	var c chunks
	_ = RenderTo(&c, snap, spec) // chunks never fail
	var b strings.Builder
	b.Grow(c.size)
	for _, chunk := range c.list {
		b.Write(chunk)
	}
	return b.String()
}

// chunks keeps what is written in chunks of 1 MB, so that a string of
// tens of megabytes is built with one allocation of its size rather than
// by growing it over and over.
type chunks struct {
	list [][]byte
	size int
}

func (c *chunks) Write(p []byte) (int, error) {
	c.size += len(p)
	for rest := p; len(rest) > 0; {
		if len(c.list) == 0 || len(c.list[len(c.list)-1]) == cap(c.list[len(c.list)-1]) {
			c.list = append(c.list, make([]byte, 0, 1<<20))
		}
		last := &c.list[len(c.list)-1]
		n := min(len(rest), cap(*last)-len(*last))
		*last = append(*last, rest[:n]...)
		rest = rest[n:]
	}
	return len(p), nil
}

// RenderTo writes what Render returns to w as it is produced, without
// holding the whole in memory, and returns the first error from w. The
// rules are written on up to GOMAXPROCS goroutines; the output does not
// depend on how many. Like Render, it does not check spec.
func RenderTo(w io.Writer, snap *servicemap.Snapshot, spec Spec) error {
	sp := spec.withDefaults()
	rs := sp.build(snap, nil)
	return sp.writeTables(w, rs, tableWrite{fixed: true, own: rs.rules, dispatch: true})
}

// tableWrite says what writeTables writes.
type tableWrite struct {
	// fixed writes the chains that do not depend on services.
	fixed bool
	// own are the ports whose own (nat) chains are written.
	own []*portRules
	// dispatch rewrites the dispatch chains whole (and with them the
	// filter table).
	dispatch bool
	// edits per table, written where the dispatch chains would be: a
	// partial sync's deletes and inserts of dispatch lines (see
	// dispatchEdits), instead of dispatch.
	edits map[tableName][]string
	// extra lines per table, written after the rules (jump inserts).
	extra map[tableName][]string
	// stale chains per table, flushed and deleted.
	stale map[tableName][]string
}

// Chains per piece of output that one goroutine writes at a time.
const (
	chainsPerPiece       = 256
	declarationsPerPiece = 2048
)

// writers keeps the buffered writers of restore inputs between syncs.
var writers sync.Pool

// writeTables writes the filter then the nat table. Declaring a chain
// flushes it under --noflush, so every chain written is rewritten whole.
// Chains are declared and written sorted by name.
func (sp *Spec) writeTables(w io.Writer, rs *ruleset, tw tableWrite) error {
	bw, _ := writers.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(w, 64<<10)
	}
	bw.Reset(w)
	defer func() {
		bw.Reset(nil)
		writers.Put(bw)
	}()
	fixed := sp.fixedChains()
	for _, table := range []tableName{tableFilter, tableNAT} {
		if table == tableFilter && !tw.dispatch && len(tw.edits[tableFilter]) == 0 {
			continue
		}
		bw.WriteString("*" + string(table) + "\n")
		var fx []fixedChain
		if tw.fixed {
			fx = fixed[table]
		}
		var own []*portRules
		if table == tableNAT {
			own = tw.own
		}
		others := slices.Clone(tw.stale[table])
		for d := dispatch(0); d < numDispatch && tw.dispatch; d++ {
			if t, name := sp.dispatchChain(d); t == table {
				others = append(others, name)
			}
		}
		set := sp.newChainSet(own, fx, others)
		pieces := (len(set.chains) + declarationsPerPiece - 1) / declarationsPerPiece
		err := emit(bw, pieces, func(dst []byte, i int) []byte {
			for _, c := range set.chains[i*declarationsPerPiece : min((i+1)*declarationsPerPiece, len(set.chains))] {
				dst = append(dst, ':')
				dst = sp.appendName(dst, set, c.key)
				dst = append(dst, " - [0:0]\n"...)
			}
			return dst
		})
		if err != nil {
			return err
		}

		for _, line := range tw.edits[table] {
			bw.WriteString(line + "\n")
		}
		for d := dispatch(0); d < numDispatch && tw.dispatch; d++ {
			if t, _ := sp.dispatchChain(d); t != table {
				continue
			}
			for _, pr := range rs.rules {
				bw.WriteString(pr.text[d])
			}
			if d == natServices {
				for _, line := range sp.nodePortJumps(rs.family) {
					bw.WriteString(line + "\n")
				}
			}
		}

		pieces = (len(set.chains) + chainsPerPiece - 1) / chainsPerPiece
		err = emit(bw, pieces, func(dst []byte, i int) []byte {
			chains := set.chains[i*chainsPerPiece : min((i+1)*chainsPerPiece, len(set.chains))]
			for j := range chains {
				dst = sp.appendChain(dst, &rs.family, set, &chains[j])
			}
			return dst
		})
		set.release()
		if err != nil {
			return err
		}
		for _, line := range tw.extra[table] {
			bw.WriteString(line + "\n")
		}
		for _, name := range tw.stale[table] {
			bw.WriteString("-X " + name + "\n")
		}
		if _, err := bw.WriteString("COMMIT\n"); err != nil {
			return err
		}
	}
	return bw.Flush()
}
