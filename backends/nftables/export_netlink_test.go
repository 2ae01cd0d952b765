//go:build linux

package nftables

import (
	"context"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/servicemap"
)

// ApplyNetlinkForTest programs snap's whole ruleset, the tables Render
// prints, in the network namespace of the calling thread, through the
// netlink writer: for each table the skeleton in one run, then its service
// ports in a second, with a fresh writer, as after a restart.
func ApplyNetlinkForTest(snap *servicemap.Snapshot, spec Spec) error {
	ctx := context.Background()
	for _, r := range NetlinkRunsForTest(snap, spec) {
		for _, n := range []*NetlinkOps{r.Setup, r.Ports} {
			if err := RunNetlinkForTest(ctx, r.V6, r.Table, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// NetlinkRun is what ApplyNetlinkForTest sends to one table.
type NetlinkRun struct {
	Table        string
	V6           bool
	Setup, Ports *NetlinkOps
}

// NetlinkRunsForTest returns the runs of ApplyNetlinkForTest: for every
// table that holds a service port, the skeleton, then all its ports' sets,
// chains, rules and elements (as a full sync's batch, not cut in batches).
func NetlinkRunsForTest(snap *servicemap.Snapshot, spec Spec) []NetlinkRun {
	spec = spec.withDefaults()
	rs := build(snap, spec)
	var runs []NetlinkRun
	for shard, ports := range partition(rs.ports, spec.Shards) {
		if len(ports) == 0 {
			continue
		}
		var o ops
		o.portObjects(ports)
		forEachElement(ports, func(e element) { o.elem(opAdd, &rs.containers[e.in], e.key, e.value) })
		runs = append(runs, NetlinkRun{Table: tableName(spec, shard), V6: rs.fam.Is6,
			Setup: &NetlinkOps{o: setupOps(&rs.skeleton)}, Ports: &NetlinkOps{o: o}})
	}
	return runs
}

// NetlinkOps are operations for RunNetlinkForTest, which can also fill a
// knftables transaction, to compare the two transports.
type NetlinkOps struct {
	o ops
	// sets are the sets declared by these ops and those they follow (Next).
	sets map[string]*set
}

// Next returns empty ops that know the sets n declared.
func (n *NetlinkOps) Next() *NetlinkOps {
	if n.sets == nil {
		n.sets = map[string]*set{}
	}
	return &NetlinkOps{sets: n.sets}
}

func (n *NetlinkOps) Len() int             { return len(n.o) }
func (n *NetlinkOps) AddTable()            { n.o.table(opAdd) }
func (n *NetlinkOps) AddChain(name string) { n.o.chainNamed(opAdd, name) }

// AddSet declares a set (a verdict map when isMap) whose key has the
// fields named by their nft types ("ipv4_addr", "inet_proto", ...).
func (n *NetlinkOps) AddSet(name string, isMap, interval bool, fields ...string) {
	s := &set{name: name, isMap: isMap}
	if interval {
		s.flags = flagInterval
	}
	for i, f := range fields {
		s.key[i] = setField(slices.Index(fieldNames[:], f))
	}
	n.Next() // makes n.sets
	n.sets[name] = s
	n.o.setOp(opAdd, s)
}

func (n *NetlinkOps) FlushSet(name string)                { n.o.setOp(opFlush, n.sets[name]) }
func (n *NetlinkOps) AddElement(set, key, verdict string) { n.o.elem(opAdd, n.sets[set], key, verdict) }
func (n *NetlinkOps) DeleteElement(set, key string)       { n.o.elem(opDelete, n.sets[set], key, "") }

// Rules counts the rules added.
func (n *NetlinkOps) Rules() int {
	c := 0
	for _, x := range n.o {
		if x.kind == oRules {
			c += x.chain.ruleCount()
		}
	}
	return c
}

// AddAccept adds "accept" to chain; AddDrop "drop".
func (n *NetlinkOps) AddAccept(c string) {
	n.o.rules(&chain{name: c, rules: []rule{{accept()}}})
}
func (n *NetlinkOps) AddDrop(c string) {
	n.o.rules(&chain{name: c, rules: []rule{{drop()}}})
}

// AddSetsAccept adds "ip daddr @addrs th dport @ports accept" to chain.
func (n *NetlinkOps) AddSetsAccept(c, addrs, ports string) {
	n.o.rules(&chain{name: c, rules: []rule{{inSet(addrs, fDaddr), inSet(ports, fDport), accept()}}})
}

// AddRandomDNAT adds "numgen random mod M == 0 meta l4proto tcp dnat to EP".
func (n *NetlinkOps) AddRandomDNAT(c string, mod uint32, ep netip.AddrPort) {
	n.o.rules(&chain{name: c, rules: []rule{{numgen(mod), l4proto(v1.ProtocolTCP), dnat(ep)}}})
}

// TranslateForTest builds the batch without sending it.
func (n *NetlinkOps) TranslateForTest(v6 bool, table string) error {
	fam := ipv4
	if v6 {
		fam = ipv6
	}
	_, err := newNetlinkWriter().translate(fam, table, n.o)
	return err
}

// Fill adds the operations to a knftables transaction, rules spelt for an
// ip table (ip6 when v6).
func (n *NetlinkOps) Fill(tx *knftables.Transaction, v6 bool) {
	fam := ipv4
	if v6 {
		fam = ipv6
	}
	n.o.fill(tx, &fam)
}

// RunNetlinkForTest sends n to table (ip, or ip6 when v6) as one batch, in
// the network namespace of the calling thread, with a fresh writer.
func RunNetlinkForTest(ctx context.Context, v6 bool, table string, n *NetlinkOps) error {
	fam := ipv4
	if v6 {
		fam = ipv6
	}
	return newNetlinkWriter().run(ctx, fam, table, n.o)
}

// ChurnOpsForTest returns a small update of snap's ruleset and the table
// it applies to, the table of snap's first service port: delete the port's
// first shared element, then flush and refill its first chain (the
// services chain when it has none).
func ChurnOpsForTest(snap *servicemap.Snapshot, spec Spec) (string, *NetlinkOps) {
	spec = spec.withDefaults()
	rs := build(snap, spec)
	n := &NetlinkOps{}
	if len(rs.ports) == 0 {
		return tableName(spec, 0), n
	}
	p := rs.ports[0]
	if len(p.elems) > 0 {
		n.o.elem(opDelete, &rs.containers[p.elems[0].in], p.elems[0].key, "")
	}
	c := &rs.fixed[0]
	if len(p.chains) > 0 {
		c = &p.chains[0]
	}
	n.o.chainOp(opFlush, c)
	n.o.rules(c)
	return tableName(spec, shardOf(p.name, spec.Shards)), n
}
