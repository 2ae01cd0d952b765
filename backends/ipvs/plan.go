package ipvs

import (
	"cmp"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/internal/nftfam"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
)

// plan is the desired state for one snapshot: the virtual servers with
// their real servers, the addresses the dummy link must carry, and the
// elements of the netfilter half's sets. Building it is a pure function of
// the snapshot, the spec and the node addresses.
//
// It is kept per service port too (ports): what each port contributes, with
// counts for what several contribute (an address bound for several ports, a
// hairpin element of an endpoint several services share), so that an
// incremental sync takes out the contributions of the ports that changed
// and puts in their new ones (see update) instead of planning every port.
type plan struct {
	fam     family
	servers map[Key]*desired
	bind    map[netip.Addr]int      // address -> contributions binding it
	sets    [numSets]map[string]int // element -> contributions
	ports   map[servicemap.ServicePortName]*portPlan
	// owners are the service ports asking for each virtual server, sorted
	// by name: the first one has it.
	owners map[Key][]servicemap.ServicePortName
	// What the plan was built for; other node addresses need a new plan.
	nodeIPs []netip.Addr
	local   map[netip.Addr]bool
}

// portPlan is what one service port contributes to the plan.
type portPlan struct {
	sp     *servicemap.ServicePort
	sched  string // the scheduler SchedulerFor gave, to see it change
	claims []Key  // the virtual servers it asks for, in order, won or not
	// servers are those it won; bind and elems are sorted, without
	// duplicates.
	servers []*desired
	bind    []netip.Addr
	elems   []elem
}

// elem is one element of a set: the set and the element as text.
type elem struct {
	set setID
	e   string
}

func compareElem(a, b elem) int { return cmp.Or(cmp.Compare(a.set, b.set), strings.Compare(a.e, b.e)) }

// desired is one virtual server and the real servers it should have.
type desired struct {
	vs    VirtualServer
	reals []netip.AddrPort // sorted, without duplicates
	node  bool             // on a node address (not bound to the dummy link)
}

func (d *desired) equal(o *desired) bool {
	return d.vs == o.vs && slices.Equal(d.reals, o.reals) && d.node == o.node
}

// family holds what differs between IPv4 and IPv6.
type family = nftfam.Family

var (
	ipv4     = nftfam.IPv4
	ipv6     = nftfam.IPv6
	familyOf = nftfam.Of
)

// planner plans service ports.
type planner struct {
	spec    *Spec
	log     *slog.Logger
	fam     family
	nodeIPs []netip.Addr        // node ports are served here
	local   map[netip.Addr]bool // node addresses, on links other than the dummy one
	pods    bool                // cluster CIDRs of this family are known
	owners  map[Key][]servicemap.ServicePortName
	pp      *portPlan // the port being planned
	seen    []Key     // its virtual servers planned so far
}

func newPlanner(fam family, spec *Spec, log *slog.Logger, nodeIPs []netip.Addr, local map[netip.Addr]bool, owners map[Key][]servicemap.ServicePortName) *planner {
	return &planner{spec: spec, log: log, fam: fam, nodeIPs: nodeIPs, local: local, owners: owners,
		pods: len(prefixesOf(fam, spec.ClusterCIDRs)) > 0}
}

// buildPlan returns the desired state of snap. nodeIPs are the addresses
// node ports are served on, already filtered (see nftfam.Family.NodePortIPs); local
// holds every address the node has on other links than the dummy one: a
// virtual server on one of those (a node port, or an external IP that is
// the node's) is not bound to the dummy link but recorded (see
// setNodeAddrServers).
func buildPlan(snap *servicemap.Snapshot, spec *Spec, log *slog.Logger, nodeIPs []netip.Addr, local map[netip.Addr]bool) *plan {
	fam := familyOf(snap.IPFamily())
	p := &plan{
		fam:     fam,
		servers: make(map[Key]*desired, snap.Len()),
		bind:    make(map[netip.Addr]int, snap.Len()),
		ports:   make(map[servicemap.ServicePortName]*portPlan, snap.Len()),
		owners:  make(map[Key][]servicemap.ServicePortName, snap.Len()),
		nodeIPs: nodeIPs,
		local:   local,
	}
	for i := range p.sets {
		p.sets[i] = map[string]int{}
	}
	for _, c := range prefixesOf(fam, spec.ClusterCIDRs) {
		p.sets[setClusterCIDRs][c.String()] = 1
	}
	pl := newPlanner(fam, spec, log, nodeIPs, local, p.owners)
	// In name order, so the first port asking for a virtual server gets it.
	for _, sp := range snap.Ports() {
		claims := pl.claims(sp)
		for _, k := range claims {
			if o := p.owners[k]; len(o) == 0 || o[len(o)-1] != sp.Name {
				p.owners[k] = append(o, sp.Name)
			}
		}
		p.addPort(pl.port(sp, claims), nil)
	}
	return p
}

// claims returns the virtual servers sp asks for, in the order port plans
// them.
func (pl *planner) claims(sp *servicemap.ServicePort) []Key {
	if protoNumber(sp.Protocol) == 0 {
		return nil
	}
	var out []Key
	if pl.fam.Has(sp.ClusterIP) {
		out = append(out, Key{sp.ClusterIP, sp.Port, sp.Protocol})
	}
	for _, a := range slices.Concat(sp.ExternalIPs, sp.LoadBalancerIPs) {
		if pl.fam.Has(a) {
			out = append(out, Key{a, sp.Port, sp.Protocol})
		}
	}
	if sp.NodePort != 0 {
		for _, a := range pl.nodeIPs {
			out = append(out, Key{a, sp.NodePort, sp.Protocol})
		}
	}
	return out
}

// port plans one service port from its backends.PortPlan, as kube-proxy's
// IPVS mode does: the cluster IP balances over the internal route's
// endpoints; external IPs, load-balancer IPs and node ports over the
// external route's. Where the plan short-circuits (externalTrafficPolicy
// Local), traffic from the pods and from the node to an external address
// is translated to the cluster IP before IPVS sees it (see
// shortCircuit). claims are pl.claims(sp); pl.owners must list sp.Name
// for each.
func (pl *planner) port(sp *servicemap.ServicePort, claims []Key) *portPlan {
	pl.pp = &portPlan{sp: sp, claims: claims}
	pl.seen = pl.seen[:0]
	defer func() { pl.pp = nil }()
	if protoNumber(sp.Protocol) == 0 {
		pl.log.Warn("ipvs: protocol not supported; service port skipped",
			"servicePort", sp.Name.String(), "protocol", sp.Protocol)
		return pl.pp
	}
	plan := backends.Plan(sp)
	fam := pl.fam
	// Room for the usual: a hairpin element per endpoint, a few per
	// virtual server.
	pl.pp.servers = make([]*desired, 0, len(claims))
	pl.pp.elems = make([]elem, 0, len(sp.Endpoints)+4*len(claims))
	pl.pp.sched = pl.spec.scheduler(sp.Name, pl.log)
	template := VirtualServer{Protocol: sp.Protocol, Scheduler: pl.pp.sched}
	if plan.AffinitySeconds > 0 {
		template.Persistent = true
		template.Timeout = uint32(plan.AffinitySeconds)
	}

	// to is where short-circuited traffic goes: the cluster IP's virtual
	// server, when it balances over the Cluster list.
	var to Key
	if fam.Has(sp.ClusterIP) {
		k := Key{sp.ClusterIP, sp.Port, sp.Protocol}
		if pl.add(sp, template, k, plan.Internal.Endpoints, false) {
			if pl.pods || pl.spec.MasqueradeAll {
				pl.elem(setClusterIPs, k)
			}
			pl.verdict(plan.Internal, k)
			if plan.ShortCircuit && !plan.Internal.Local {
				to = k
			}
		}
	}
	lbFrom := len(sp.ExternalIPs)
	for i, a := range slices.Concat(sp.ExternalIPs, sp.LoadBalancerIPs) {
		k := Key{a, sp.Port, sp.Protocol}
		if !fam.Has(k.Addr) || !pl.add(sp, template, k, plan.External.Endpoints, false) {
			continue
		}
		pl.external(plan, k, to)
		if i >= lbFrom && plan.Firewall {
			pl.firewall(&plan, k)
		}
	}
	if sp.NodePort != 0 {
		for _, a := range pl.nodeIPs {
			k := Key{a, sp.NodePort, sp.Protocol}
			if pl.add(sp, template, k, plan.External.Endpoints, true) {
				pl.external(plan, k, to)
			}
		}
	}
	slices.SortFunc(pl.pp.bind, netip.Addr.Compare)
	pl.pp.bind = slices.Compact(pl.pp.bind)
	slices.SortFunc(pl.pp.elems, compareElem)
	pl.pp.elems = slices.Compact(pl.pp.elems)
	return pl.pp
}

// add plans a virtual server, unless another service port already has its
// address, port and protocol: then the first one (by name) keeps it; or
// this port planned it already (for another of its addresses).
func (pl *planner) add(sp *servicemap.ServicePort, template VirtualServer, k Key, eps []endpoints.Endpoint, node bool) bool {
	if slices.Contains(pl.seen, k) {
		pl.log.Warn("ipvs: virtual server claimed twice by one service port",
			"virtualServer", k.String(), "servicePort", sp.Name.String())
		return false
	}
	pl.seen = append(pl.seen, k)
	if o := pl.owners[k]; len(o) == 0 || o[0] != sp.Name {
		kept := ""
		if len(o) > 0 {
			kept = o[0].String()
		}
		pl.log.Warn("ipvs: virtual server claimed by two service ports; the first keeps it",
			"virtualServer", k.String(), "servicePort", sp.Name.String(), "kept", kept)
		return false
	}
	vs := template
	vs.Addr, vs.Port = k.Addr, k.Port
	node = node || pl.local[k.Addr]
	d := &desired{vs: vs, node: node}
	for _, ep := range eps {
		if ep.Addr.IsValid() && pl.fam.Has(ep.Addr.Addr()) {
			d.reals = append(d.reals, ep.Addr)
			pl.pp.elems = append(pl.pp.elems, elem{setHairpin, pairElement(ep.Addr.Addr())})
		}
	}
	slices.SortFunc(d.reals, netip.AddrPort.Compare)
	d.reals = slices.Compact(d.reals)
	pl.pp.servers = append(pl.pp.servers, d)
	if node {
		pl.elem(setNodeAddrServers, k)
	} else {
		pl.pp.bind = append(pl.pp.bind, k.Addr)
	}
	return true
}

// external adds the netfilter elements of an external address k; to is
// the cluster IP short-circuited traffic goes to (the zero Key for none).
func (pl *planner) external(plan backends.PortPlan, k, to Key) {
	if !plan.External.Local {
		// With Cluster policy the endpoint may be on another node, whose
		// reply would not come back here without masquerade.
		pl.elem(setExternalMasq, k)
	}
	pl.verdict(plan.External, k)
	if to.Addr.IsValid() {
		pl.shortCircuit(k, to)
	}
}

// shortCircuit sends traffic from the pods and from the node to the
// external address k to the cluster IP's virtual server to instead: a
// destination NAT in front of IPVS, so that an externalTrafficPolicy=Local
// address serves its own cluster from every node (kubernetes#131765).
// Traffic from the node is masqueraded, its source being the node's.
func (pl *planner) shortCircuit(k, to Key) {
	pl.elem(setShortCircuit, k)
	pl.pp.elems = append(pl.pp.elems, elem{setShortCircuitTo, keyElement(k) + " : " + addrPort(to)})
}

// addrPort is a virtual server's address and port as a value of a map of
// type addr . inet_service.
func addrPort(k Key) string { return k.Addr.String() + " . " + strconv.Itoa(int(k.Port)) }

// verdict rejects traffic to k when the route rejects (no endpoint
// anywhere) and drops it when the route drops (endpoints elsewhere, none
// for this traffic; see backends.Verdict).
func (pl *planner) verdict(r backends.Route, k Key) {
	switch r.Verdict {
	case backends.Reject:
		pl.elem(setNoEndpoints, k)
	case backends.Drop:
		pl.elem(setNoLocalEndpoints, k)
	}
}

// firewall admits only the plan's allowed sources to a load-balancer IP.
func (pl *planner) firewall(plan *backends.PortPlan, k Key) {
	pl.elem(setFirewall, k)
	for _, r := range prefixesOf(pl.fam, plan.AllowedSources(pl.nodeIPs)) {
		pl.pp.elems = append(pl.pp.elems, elem{setFirewallAllow, keyElement(k) + " . " + r.String()})
	}
}

func (pl *planner) elem(s setID, k Key) { pl.pp.elems = append(pl.pp.elems, elem{s, keyElement(k)}) }

// keyElement is a virtual server as an element of a set of type
// addr . inet_proto . inet_service.
func keyElement(k Key) string {
	return k.Addr.String() + " . " + nftProto(k.Protocol) + " . " + strconv.Itoa(int(k.Port))
}

func pairElement(a netip.Addr) string { return a.String() + " . " + a.String() }

// prefixesOf returns the valid prefixes of the family, masked, sorted and
// disjoint.
func prefixesOf(fam family, in []netip.Prefix) []netip.Prefix { return fam.Prefixes(in) }

// sortedServers returns the plan's virtual servers sorted by key.
func (p *plan) sortedServers() []*desired {
	out := make([]*desired, 0, len(p.servers))
	for _, d := range p.servers {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *desired) int { return a.vs.Key().Compare(b.vs.Key()) })
	return out
}

func toSet(addrs []netip.Addr) map[netip.Addr]bool {
	out := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		out[a] = true
	}
	return out
}
