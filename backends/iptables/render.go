package iptables

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

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
func (o *Options) dispatchChain(d dispatch) (tableName, string) {
	switch d {
	case natServices:
		return tableNAT, o.Prefix + "-SERVICES"
	case natNodePorts:
		return tableNAT, o.Prefix + "-NODEPORTS"
	case filterServices:
		return tableFilter, o.Prefix + "-SERVICES"
	case filterExternal:
		return tableFilter, o.Prefix + "-EXTERNAL-SERVICES"
	case filterFirewall:
		return tableFilter, o.Prefix + "-FIREWALL"
	default:
		return tableFilter, o.Prefix + "-NODEPORTS"
	}
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
func (o *Options) jumps() []jumpRule {
	p := o.Prefix
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

// fixedChains returns, by table, the chains whose rules do not depend on
// services.
func (o *Options) fixedChains() map[tableName][]ownChain {
	p := o.Prefix
	mark := fmt.Sprintf("0x%x", o.MasqueradeMark)
	canary := ownChain{name: p + "-CANARY", rules: []string{fmt.Sprintf("-A %s-CANARY -j RETURN", p)}}
	return map[tableName][]ownChain{
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
func (o *Options) nodePortJumps(f family) []string {
	head := fmt.Sprintf("-A %s-SERVICES -m comment --comment %s", o.Prefix,
		`"lbkit service nodeports; NOTE: this must be the last rule in this chain"`)
	tail := " -m addrtype --dst-type LOCAL -j " + o.Prefix + "-NODEPORTS"
	if f.nodePortsAll {
		return []string{head + " ! -d " + f.loopback.String() + tail}
	}
	var out []string
	if slices.ContainsFunc(f.nodePorts, f.loopback.Overlaps) {
		out = append(out, fmt.Sprintf(`-A %s-SERVICES -m comment --comment "lbkit no nodeports on loopback" -d %s -j RETURN`,
			o.Prefix, f.loopback))
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

// build renders every port of snap, reusing the rules of ports that
// previous holds (the same *ServicePort is the same port, unchanged).
func (o *Options) build(snap *servicemap.Snapshot, previous *ruleset) *ruleset {
	reuse := map[*servicemap.ServicePort]*portRules{}
	if previous != nil {
		for i, p := range previous.ports {
			reuse[p] = previous.rules[i]
		}
	}
	rs := &ruleset{
		family: o.family(snap.IPFamily() == v1.IPv6Protocol),
		ports:  snap.Ports(),
	}
	rs.rules = make([]*portRules, len(rs.ports))
	for i, p := range rs.ports {
		pr := reuse[p]
		if pr == nil {
			r := o.rulesFor(p, rs.family)
			pr = &r
		}
		rs.rules[i] = pr
	}
	return rs
}

// Render returns the complete iptables-restore input (for `iptables-restore
// --noflush`) that programs snap: every lbkit chain declared and filled,
// both tables. It is a pure function of its arguments and sorts everything,
// so the output is stable. The jumps from built-in chains are not part of
// it: Sync inserts them once, where missing.
func Render(snap *servicemap.Snapshot, opts Options) string {
	o := opts.withDefaults()
	rs := o.build(snap, nil)
	var b bytes.Buffer
	o.writeTables(&b, rs, tableWrite{fixed: true, own: rs.rules, dispatch: true})
	return b.String()
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
	// extra lines per table, written after the rules (jump inserts).
	extra map[tableName][]string
	// stale chains per table, flushed and deleted.
	stale map[tableName][]string
}

// writeTables writes the filter then the nat table. Declaring a chain
// flushes it under --noflush, so every chain written is rewritten whole.
func (o *Options) writeTables(b *bytes.Buffer, rs *ruleset, w tableWrite) {
	fixed := o.fixedChains()
	b.Grow(o.estimateSize(rs, w))
	for _, table := range []tableName{tableFilter, tableNAT} {
		if table == tableFilter && !w.dispatch {
			continue
		}
		b.WriteString("*" + string(table) + "\n")
		var chains []ownChain
		if w.fixed {
			chains = append(chains, fixed[table]...)
		}
		if table == tableNAT {
			for _, pr := range w.own {
				chains = append(chains, pr.chains...)
			}
		}
		names := make([]string, 0, len(chains)+int(numDispatch)+len(w.stale[table]))
		for _, c := range chains {
			names = append(names, c.name)
		}
		for d := dispatch(0); d < numDispatch && w.dispatch; d++ {
			if t, name := o.dispatchChain(d); t == table {
				names = append(names, name)
			}
		}
		names = append(names, w.stale[table]...)
		slices.Sort(names)
		for _, name := range slices.Compact(names) {
			b.WriteString(":" + name + " - [0:0]\n")
		}
		for d := dispatch(0); d < numDispatch && w.dispatch; d++ {
			if t, _ := o.dispatchChain(d); t != table {
				continue
			}
			for _, pr := range rs.rules {
				b.WriteString(pr.text[d])
			}
			if d == natServices {
				for _, line := range o.nodePortJumps(rs.family) {
					b.WriteString(line + "\n")
				}
			}
		}
		slices.SortFunc(chains, func(a, b ownChain) int { return strings.Compare(a.name, b.name) })
		for _, c := range chains {
			for _, line := range c.rules {
				b.WriteString(line + "\n")
			}
		}
		for _, line := range w.extra[table] {
			b.WriteString(line + "\n")
		}
		for _, name := range w.stale[table] {
			b.WriteString("-X " + name + "\n")
		}
		b.WriteString("COMMIT\n")
	}
}

// estimateSize is roughly the length of what writeTables writes, so the
// buffer grows once: at 10,000 services the full input is ~50 MB, and
// growing by doubling would copy it several times over.
func (o *Options) estimateSize(rs *ruleset, w tableWrite) int {
	n := 4096
	for _, pr := range rs.rules {
		for _, t := range pr.text {
			if w.dispatch {
				n += len(t)
			}
		}
	}
	for _, pr := range w.own {
		for _, c := range pr.chains {
			n += 2*len(c.name) + 10
			for _, r := range c.rules {
				n += len(r) + 1
			}
		}
	}
	return n
}
