package nftables

import (
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/servicemap"
)

// Base chain priorities. The filter chains that look at service addresses
// run before DNAT (dstnat - 10) so they see the address the client used;
// the no-endpoint check on locally generated traffic runs after DNAT
// (dstnat + 10), so that node traffic short-circuited to an endpoint (an
// externalTrafficPolicy=Local address with no local endpoint) is not
// dropped by the verdict meant for traffic from outside. Forwarded and input
// traffic reach their no-endpoint checks after prerouting DNAT anyway.
const (
	prioDNAT      = -100
	prioSNAT      = 100
	prioPreDNAT   = prioDNAT - 10
	prioPostDNAT  = prioDNAT + 10
	verdictReject = "goto " + chainReject
	verdictDrop   = "drop"
)

// builder turns a snapshot into a ruleset. It is used by one goroutine; its
// scratch buffer makes rule text without a temporary per part.
type builder struct {
	spec      Spec
	fam       family
	pods      bool // ClusterCIDRs given for this family
	nodeIPs   []netip.Addr
	nodeKnown bool           // the snapshot names its node: Endpoint.Local is meaningful
	svcCIDRs  []netip.Prefix // the snapshot's service ranges of the family
	buf       []byte
	base      []byte // the current port's name base
	// Slabs the ports' small values are cut from, slabSize values at a
	// time (1 when building single ports, for incremental syncs).
	slabSize  int
	elemSlab  []element
	chainSlab []chain
	pickSlab  []endpointPick
}

// maxSlabSize bounds the values allocated at once for a slab.
const maxSlabSize = 1024

func (b *builder) takeElems(n int) []element {
	if n > len(b.elemSlab) {
		b.elemSlab = make([]element, max(n, b.slabSize))
	}
	out := b.elemSlab[:0:n]
	b.elemSlab = b.elemSlab[n:]
	return out
}

func (b *builder) takeChains(n int) []chain {
	if n > len(b.chainSlab) {
		b.chainSlab = make([]chain, max(n, b.slabSize))
	}
	out := b.chainSlab[:0:n]
	b.chainSlab = b.chainSlab[n:]
	return out
}

func (b *builder) takePick() *endpointPick {
	if len(b.pickSlab) == 0 {
		b.pickSlab = make([]endpointPick, max(1, b.slabSize))
	}
	p := &b.pickSlab[0]
	b.pickSlab = b.pickSlab[1:]
	return p
}

func newBuilder(snap *servicemap.Snapshot, spec Spec) *builder {
	fam := familyOf(snap.IPFamily())
	b := &builder{
		spec:      spec,
		fam:       fam,
		pods:      len(prefixesOf(fam, spec.ClusterCIDRs)) > 0,
		nodeKnown: snap.Node().Name != "",
		svcCIDRs:  prefixesOf(fam, snap.ServiceCIDRs()),
	}
	for _, a := range spec.NodeIPs {
		if a.IsValid() && a.Unmap().Is6() == fam.is6 {
			b.nodeIPs = append(b.nodeIPs, a.Unmap())
		}
	}
	return b
}

// build returns the ruleset for a whole snapshot. The per-port values are
// allocated in slabs: a 10,000-service ruleset would otherwise be tens of
// thousands of small objects for the garbage collector to trace.
func build(snap *servicemap.Snapshot, spec Spec) *ruleset {
	return buildPorts(snap, spec, sortedPorts(snap))
}

// buildPorts returns the ruleset for some of a snapshot's ports, sorted by
// name.
func buildPorts(snap *servicemap.Snapshot, spec Spec, ports []*servicemap.ServicePort) *ruleset {
	b := newBuilder(snap, spec)
	rs := &ruleset{skeleton: b.skeleton()}
	b.slabSize = min(max(len(ports), 1), maxSlabSize)
	slab := make([]portRules, len(ports))
	rs.ports = make([]*portRules, len(ports))
	for i, p := range ports {
		rs.ports[i] = &slab[i]
		b.fill(&slab[i], p)
	}
	return rs
}

func (b *builder) skeleton() skeleton {
	fam := b.fam
	addr := fam.addrType
	svcKey := addr + " . inet_proto . inet_service : verdict"
	portKey := "inet_proto . inet_service : verdict"
	s := skeleton{fam: fam}
	s.containers = [numContainers]set{
		cServiceIPs:          {name: mapServiceIPs, isMap: true, typ: svcKey},
		cServiceNodePorts:    {name: mapServiceNodePorts, isMap: true, typ: portKey},
		cNoEndpointServices:  {name: mapNoEPServices, isMap: true, typ: svcKey},
		cNoEndpointNodePorts: {name: mapNoEPNodePorts, isMap: true, typ: portKey},
		cFirewallIPs:         {name: mapFirewallIPs, isMap: true, typ: svcKey},
		cHairpin:             {name: setHairpin, typ: addr + " . " + addr},
		cHealthCheck:         {name: setHealthCheck, typ: "inet_service"},
		cClusterIPs:          {name: setClusterIPs, typ: addr},
	}

	// Node ports: never on loopback, and only on NodePortAddresses when set.
	nodePortDaddr := rule{addrNotIn(fDaddr, fam.loopback)}
	if cidrs := prefixesOf(fam, b.spec.ClusterCIDRs); len(cidrs) > 0 {
		s.static = append(s.static, intervalSet(setClusterCIDRs, addr, cidrs))
	}
	if npa := prefixesOf(fam, b.spec.NodePortAddresses); len(npa) > 0 {
		s.static = append(s.static, intervalSet(setNodePortAddrs, addr, npa))
		nodePortDaddr = append(nodePortDaddr, inSet(setNodePortAddrs, fDaddr))
	}
	newJump := func(chain string) rule { return rule{ctState(ctStateNew), jump(chain)} }
	dispatch := func(m string) rule { return rule{vmap(m, fDaddr, fL4proto, fDport)} }
	nodePorts := func(m string) rule {
		return append(nodePortDaddr.clone(), vmap(m, fL4proto, fDport))
	}

	s.base = []chain{
		{name: "filter-prerouting", hook: &hook{"filter", "prerouting", prioPreDNAT},
			rules: []rule{newJump(chainFirewallCheck)}},
		{name: "filter-input", hook: &hook{"filter", "input", prioPreDNAT},
			rules: []rule{
				// Accepting here cannot override another table's drop (every
				// base chain gets its say); it keeps lbkit's own checks off
				// health-check traffic and lists the ports for people.
				{l4proto(v1.ProtocolTCP), inSet(setHealthCheck, fDport), accept()},
				newJump(chainNodePortEPCheck),
				newJump(chainServiceEPCheck),
			}},
		{name: "filter-forward", hook: &hook{"filter", "forward", prioPreDNAT},
			rules: []rule{newJump(chainServiceEPCheck), newJump(chainClusterIPsCheck)}},
		{name: "filter-output", hook: &hook{"filter", "output", prioPreDNAT},
			rules: []rule{newJump(chainFirewallCheck)}},
		{name: "filter-output-post-dnat", hook: &hook{"filter", "output", prioPostDNAT},
			rules: []rule{newJump(chainServiceEPCheck), newJump(chainClusterIPsCheck)}},
		{name: "nat-prerouting", hook: &hook{"nat", "prerouting", prioDNAT},
			rules: []rule{{jump(chainServices)}}},
		{name: "nat-output", hook: &hook{"nat", "output", prioDNAT},
			rules: []rule{{jump(chainServices)}}},
		{name: "nat-postrouting", hook: &hook{"nat", "postrouting", prioSNAT},
			rules: []rule{{jump(chainMasquerading)}}},
	}
	if len(b.svcCIDRs) > 0 {
		// A new connection still addressed inside the service ranges once
		// every table's own checks had their say (one priority later than
		// the rejects, so that no shard's drop pre-empts another shard's
		// reject) is for an address no Service holds: dropped, as
		// kube-proxy does, rather than routed out of the node.
		s.static = append(s.static, intervalSet(setServiceCIDRs, addr, b.svcCIDRs))
		unallocated := []rule{{ctState(ctStateNew), inSet(setServiceCIDRs, fDaddr), drop()}}
		s.base = append(s.base,
			chain{name: "filter-forward-unallocated", hook: &hook{"filter", "forward", prioPreDNAT + 1}, rules: unallocated},
			chain{name: "filter-output-unallocated", hook: &hook{"filter", "output", prioPostDNAT + 1}, rules: unallocated})
	}
	mark := b.spec.MasqueradeMark
	s.fixed = []chain{
		{name: chainServices, rules: []rule{
			dispatch(mapServiceIPs),
			append(rule{fibLocal(fDaddr)}, nodePorts(mapServiceNodePorts)...),
		}},
		{name: chainMasquerading, rules: []rule{
			{markAny(mark), markAnd(^mark), masquerade()},
			// A pod that reaches itself through a service address: without
			// masquerade it would answer itself directly and drop the reply.
			{ctStatus(ctStatusDNAT), inSet(setHairpin, fSaddr, fDaddr), masquerade()},
		}},
		{name: chainMarkMasq, rules: []rule{{markOr(mark)}}},
		{name: chainFirewallCheck, rules: []rule{dispatch(mapFirewallIPs)}},
		{name: chainServiceEPCheck, rules: []rule{dispatch(mapNoEPServices)}},
		{name: chainNodePortEPCheck, rules: []rule{nodePorts(mapNoEPNodePorts)}},
		// Map values can only be verdicts, and reject is not one.
		{name: chainReject, rules: []rule{{reject()}}},
		// A new connection still addressed to a cluster IP at the forward
		// hook, or after output's DNAT, asked for a port the service does
		// not have (a port it has was DNATed to an endpoint by then): it is
		// refused at once, as kube-proxy does, rather than routed towards an
		// address nothing owns.
		{name: chainClusterIPsCheck, rules: []rule{{inSet(setClusterIPs, fDaddr), reject()}}},
	}
	return s
}

func intervalSet(name, typ string, prefixes []netip.Prefix) set {
	s := set{name: name, typ: typ, flags: flagInterval}
	for _, p := range prefixes {
		s.elems = append(s.elems, p.String())
	}
	return s
}

// sortedPorts returns the snapshot's ports sorted by name, as Ports does,
// but faster: it sorts indices into a contiguous copy of the names (no
// pointer to follow per comparison, 4 bytes to move per swap) and stops
// comparing at the first difference.
func sortedPorts(snap *servicemap.Snapshot) []*servicemap.ServicePort {
	ports := make([]*servicemap.ServicePort, 0, snap.Len())
	names := make([]servicemap.ServicePortName, 0, snap.Len())
	for p := range snap.All() {
		ports = append(ports, p)
		names = append(names, p.Name)
	}
	order := make([]int32, len(ports))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return compareNames(&names[a], &names[b]) })
	out := make([]*servicemap.ServicePort, len(ports))
	for i, j := range order {
		out[i] = ports[j]
	}
	return out
}

func compareNames(a, b *servicemap.ServicePortName) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	if c := strings.Compare(a.Port, b.Port); c != 0 {
		return c
	}
	return strings.Compare(string(a.Protocol), string(b.Protocol))
}
