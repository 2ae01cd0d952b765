//go:build linux

package ipvs

import (
	"log/slog"
	"net/netip"
	"slices"
	"strconv"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
)

// plan is the desired state for one snapshot: the virtual servers with
// their real servers, the addresses the dummy link must carry, and the
// elements of the netfilter half's sets. Building it is a pure function of
// the snapshot, the options and the node addresses.
type plan struct {
	fam     family
	servers map[Key]*desired
	bind    map[netip.Addr]bool
	sets    [numSets]map[string]bool
}

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
type family struct {
	nft  knftables.Family
	ip   string // "ip" or "ip6", as in "ip saddr"
	addr string // nft type of one address
	is6  bool
}

var (
	ipv4 = family{nft: knftables.IPv4Family, ip: "ip", addr: "ipv4_addr"}
	ipv6 = family{nft: knftables.IPv6Family, ip: "ip6", addr: "ipv6_addr", is6: true}
)

func familyOf(f v1.IPFamily) family {
	if f == v1.IPv6Protocol {
		return ipv6
	}
	return ipv4
}

func (f family) has(a netip.Addr) bool { return a.IsValid() && a.Is6() == f.is6 && !a.Is4In6() }

// planner builds a plan.
type planner struct {
	opts    *Options
	p       *plan
	nodeIPs []netip.Addr        // node ports are served here
	local   map[netip.Addr]bool // node addresses, on links other than the dummy one
	pods    bool                // cluster CIDRs of this family are known
}

// buildPlan returns the desired state of snap. nodeIPs are the addresses
// node ports are served on, already filtered (see usableNodeIPs); local
// holds every address the node has on other links than the dummy one: a
// virtual server on one of those (a node port, or an external IP that is
// the node's) is not bound to the dummy link but recorded (see
// setNodeAddrServers).
func buildPlan(snap *servicemap.Snapshot, opts *Options, nodeIPs []netip.Addr, local map[netip.Addr]bool) *plan {
	fam := familyOf(snap.IPFamily())
	pl := &planner{
		opts:    opts,
		nodeIPs: nodeIPs,
		local:   local,
		p: &plan{
			fam:     fam,
			servers: make(map[Key]*desired, snap.Len()),
			bind:    make(map[netip.Addr]bool, snap.Len()),
		},
	}
	for i := range pl.p.sets {
		pl.p.sets[i] = map[string]bool{}
	}
	for _, c := range backends.Disjoint(prefixesOf(fam, opts.ClusterCIDRs)) {
		pl.p.sets[setClusterCIDRs][c.String()] = true
		pl.pods = true
	}
	for _, port := range snap.Ports() {
		pl.port(port)
	}
	return pl.p
}

// port plans one service port from its backends.PortPlan, as kube-proxy's
// IPVS mode does: the cluster IP balances over the internal route's
// endpoints; external IPs, load-balancer IPs and node ports over the
// external route's. Where the plan short-circuits (externalTrafficPolicy
// Local), traffic from the pods and from the node to an external address
// is translated to the cluster IP before IPVS sees it (see
// shortCircuit).
func (pl *planner) port(sp *servicemap.ServicePort) {
	if protoNumber(sp.Protocol) == 0 {
		pl.opts.Logger.Warn("ipvs: protocol not supported; service port skipped",
			"servicePort", sp.Name.String(), "protocol", sp.Protocol)
		return
	}
	plan := backends.Plan(sp)
	fam := pl.p.fam
	template := VirtualServer{Protocol: sp.Protocol, Scheduler: pl.opts.scheduler(sp.Name)}
	if plan.AffinitySeconds > 0 {
		template.Persistent = true
		template.Timeout = uint32(plan.AffinitySeconds)
	}

	// to is where short-circuited traffic goes: the cluster IP's virtual
	// server, when it balances over the Cluster list.
	var to Key
	if fam.has(sp.ClusterIP) {
		k := Key{sp.ClusterIP, sp.Port, sp.Protocol}
		if pl.add(sp, template, k, plan.Internal.Endpoints, false) {
			if pl.pods {
				pl.elem(setClusterIPs, k)
			}
			pl.verdict(plan.Internal, k)
			if plan.ShortCircuit && !plan.Internal.Local {
				to = k
			}
		}
	}
	var addrs []Key
	for _, a := range sp.ExternalIPs {
		addrs = append(addrs, Key{a, sp.Port, sp.Protocol})
	}
	for _, a := range sp.LoadBalancerIPs {
		addrs = append(addrs, Key{a, sp.Port, sp.Protocol})
	}
	lbFrom := len(sp.ExternalIPs)
	for i, k := range addrs {
		if !fam.has(k.Addr) || !pl.add(sp, template, k, plan.External.Endpoints, false) {
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
}

// add plans a virtual server, unless another service port already has its
// address, port and protocol: then the first one (by name) keeps it.
func (pl *planner) add(sp *servicemap.ServicePort, template VirtualServer, k Key, eps []endpoints.Endpoint, node bool) bool {
	if d, dup := pl.p.servers[k]; dup {
		pl.opts.Logger.Warn("ipvs: virtual server claimed by two service ports; the first keeps it",
			"virtualServer", k.String(), "servicePort", sp.Name.String(), "kept", d.vs.Key().String())
		return false
	}
	vs := template
	vs.Addr, vs.Port = k.Addr, k.Port
	node = node || pl.local[k.Addr]
	d := &desired{vs: vs, node: node}
	for _, ep := range eps {
		if ep.Addr.IsValid() && pl.p.fam.has(ep.Addr.Addr()) {
			d.reals = append(d.reals, ep.Addr)
			pl.p.sets[setHairpin][pairElement(ep.Addr.Addr())] = true
		}
	}
	slices.SortFunc(d.reals, netip.AddrPort.Compare)
	d.reals = slices.Compact(d.reals)
	pl.p.servers[k] = d
	if node {
		pl.elem(setNodeAddrServers, k)
	} else {
		pl.p.bind[k.Addr] = true
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
	pl.p.sets[setShortCircuitTo][keyElement(k)+" : "+addrPort(to)] = true
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
	for _, r := range prefixesOf(pl.p.fam, plan.AllowedSources(pl.nodeIPs)) {
		pl.p.sets[setFirewallAllow][keyElement(k)+" . "+r.String()] = true
	}
}

func (pl *planner) elem(s setID, k Key) { pl.p.sets[s][keyElement(k)] = true }

// keyElement is a virtual server as an element of a set of type
// addr . inet_proto . inet_service.
func keyElement(k Key) string {
	return k.Addr.String() + " . " + nftProto(k.Protocol) + " . " + strconv.Itoa(int(k.Port))
}

func pairElement(a netip.Addr) string { return a.String() + " . " + a.String() }

// usableNodeIPs returns the addresses of in that node ports may use: of the
// family, not loopback, link-local, multicast or unspecified, inside the
// family's prefixes of allowed (when it has any: prefixes of the other
// family only restrict nothing, as in kube-proxy); sorted, without
// duplicates.
func usableNodeIPs(fam family, in []netip.Addr, allowed []netip.Prefix) []netip.Addr {
	allowed = prefixesOf(fam, allowed)
	var out []netip.Addr
	for _, a := range in {
		a = a.Unmap()
		if !fam.has(a) || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
			continue
		}
		if len(allowed) > 0 && !slices.ContainsFunc(allowed, func(p netip.Prefix) bool { return p.Contains(a) }) {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// prefixesOf returns the valid, masked prefixes of the family.
func prefixesOf(fam family, in []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range in {
		if p.IsValid() && fam.has(p.Addr()) {
			out = append(out, p.Masked())
		}
	}
	return out
}

// sortedServers returns the plan's virtual servers sorted by key.
func (p *plan) sortedServers() []*desired {
	out := make([]*desired, 0, len(p.servers))
	for _, d := range p.servers {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *desired) int { return a.vs.Key().Compare(b.vs.Key()) })
	return out
}

// discard is a logger for pure functions that must not log.
var discard = slog.New(slog.DiscardHandler)
