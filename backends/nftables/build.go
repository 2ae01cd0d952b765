package nftables

import (
	"net/netip"
	"slices"
	"strings"

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
	ruleSlab  []rule
	stmtSlab  []stmt
}

// maxSlabSize bounds the values allocated at once for a slab.
const maxSlabSize = 1024

// take cuts n values (empty, with capacity n) from *slab, allocating a new
// slab of at least size values when it runs out.
func take[T any](slab *[]T, n, size int) []T {
	if n > len(*slab) {
		*slab = make([]T, max(n, size))
	}
	out := (*slab)[:0:n]
	*slab = (*slab)[n:]
	return out
}

// rule returns the statements as a rule cut from a slab.
func (b *builder) rule(stmts ...stmt) rule {
	return append(take(&b.stmtSlab, len(stmts), 2*b.slabSize), stmts...)
}

func (b *builder) takePick() *endpointPick {
	p := take(&b.pickSlab, 1, b.slabSize)[:1]
	return &p[0]
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
		if a.IsValid() && a.Unmap().Is6() == fam.Is6 {
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

func intervalSet(name string, fam family, prefixes []netip.Prefix) set {
	s := set{name: name, key: keyType{addrField(fam)}, flags: flagInterval}
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
