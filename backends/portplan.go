package backends

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/internal/netprefix"
	"github.com/lbkit/lbkit/servicemap"
)

// Verdict is what a data plane does with a new connection to a frontend.
type Verdict uint8

const (
	// Forward balances the connection over the route's endpoints.
	Forward Verdict = iota
	// Reject refuses it at once: the service has no usable endpoint
	// anywhere in the cluster.
	Reject
	// Drop discards it without an answer: the service has endpoints, but
	// none this traffic may use from this node (a Local traffic policy with
	// no local endpoint), or the source is outside the load balancer's
	// source ranges.
	Drop
)

func (v Verdict) String() string {
	switch v {
	case Forward:
		return "forward"
	case Reject:
		return "reject"
	case Drop:
		return "drop"
	}
	return "unknown"
}

// Route is how one kind of traffic to a service port is handled.
type Route struct {
	Verdict Verdict
	// Local is true when the route follows the Local traffic policy: its
	// Endpoints are the port's Local list (only endpoints on this node).
	Local bool
	// Endpoints are the endpoints the route balances over: non-empty when
	// Verdict is Forward, nil otherwise. They are the plan's Cluster or
	// Local list itself (so a data plane builds one pick per list, shared
	// by every route that uses it).
	Endpoints []endpoints.Endpoint
}

// PortPlan is the traffic decision for one service port on one node, made
// once and consumed by every data plane (nftables, iptables, IPVS, the
// in-process picker) and by the tools that explain them. It is a small
// value computed by [Plan] from a *servicemap.ServicePort, with
// kube-proxy's semantics (v1.37); topology.Categorize has already chosen
// the endpoints:
//
//   - Internal is cluster-IP traffic. It follows internalTrafficPolicy: the
//     Cluster list, or the Local list for Local. With no usable endpoint
//     anywhere it is rejected; with endpoints elsewhere but none for this
//     policy (Local, none on this node) it is dropped.
//   - External is node-port, external-IP and load-balancer-IP traffic from
//     outside the cluster, following externalTrafficPolicy the same way.
//     It is meaningful only when Exposed.
//   - ShortCircuit: with externalTrafficPolicy Local, traffic to an
//     external address that comes from this node's pods or from the node
//     itself is not external: it goes to the Cluster list as if it had left
//     the node and come back through the load balancer, whatever External
//     says (a Local port without local endpoints still serves its own
//     cluster this way).
//   - Masquerading: cluster-IP traffic is masqueraded when it comes from
//     outside the pod CIDRs (a data plane that does not know the pod CIDRs
//     cannot tell, and masquerades none); Cluster-policy external traffic
//     always (its endpoint may be on another node, whose reply must come
//     back here); short-circuited traffic from the node itself always (its
//     source is the node's address of the external destination); Local
//     external traffic never, which is what keeps the client's address.
//   - Firewall: load-balancer IPs admit only the source ranges. Node ports
//     and external IPs are not subject to them.
//
// Values reached from a PortPlan are shared with the snapshot and MUST NOT
// be modified.
type PortPlan struct {
	// Port is the service port the plan is for.
	Port *servicemap.ServicePort

	// Cluster and Local are the endpoint lists the routes balance over
	// (topology's Cluster and Local lists), nil when no route uses them.
	// A data plane builds one pick (chain, set of real servers) per
	// non-nil list.
	Cluster []endpoints.Endpoint
	Local   []endpoints.Endpoint

	// Internal is how cluster-IP traffic is handled.
	Internal Route
	// Exposed reports whether the port has a node port, external IPs or
	// load-balancer IPs (Kubernetes' "externally accessible").
	Exposed bool
	// External is how traffic from outside the cluster to the node port,
	// external IPs and load-balancer IPs is handled; the zero Route when
	// the port is not Exposed.
	External Route
	// ShortCircuit reports that external-address traffic from this node's
	// pods and from the node itself goes to the Cluster list (see above).
	ShortCircuit bool
	// Firewall reports that load-balancer IPs admit only the port's
	// LoadBalancerSourceRanges.
	Firewall bool
	// AffinitySeconds is the ClientIP session affinity timeout, 0 without
	// affinity.
	AffinitySeconds int
}

// Plan returns the decision for one service port. It is a pure function
// of p and allocates nothing.
func Plan(p *servicemap.ServicePort) PortPlan {
	top := &p.Topology
	pl := PortPlan{
		Port:            p,
		Exposed:         p.ExternallyAccessible(),
		Firewall:        len(p.LoadBalancerIPs) > 0 && len(p.LoadBalancerSourceRanges) > 0,
		AffinitySeconds: p.Affinity.TimeoutSeconds(),
	}
	if len(top.Cluster) > 0 {
		pl.Cluster = top.Cluster
	}
	if len(top.Local) > 0 {
		pl.Local = top.Local
	}
	pl.Internal = pl.route(p.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal)
	if pl.Exposed {
		local := p.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
		pl.External = pl.route(local)
		pl.ShortCircuit = local && top.HasEndpoints && pl.Cluster != nil
	}
	return pl
}

// route is the route of a traffic policy: Local uses the Local list.
func (pl *PortPlan) route(local bool) Route {
	eps := pl.Cluster
	if local {
		eps = pl.Local
	}
	switch {
	case len(eps) > 0:
		return Route{Verdict: Forward, Local: local, Endpoints: eps}
	case pl.Port.Topology.HasEndpoints:
		return Route{Verdict: Drop, Local: local}
	}
	return Route{Verdict: Reject, Local: local}
}

// HasEndpoints reports whether the service port has a usable endpoint
// anywhere in the cluster: without one, every frontend rejects.
func (pl *PortPlan) HasEndpoints() bool { return pl.Port.Topology.HasEndpoints }

// UsesExternalChain reports whether external traffic needs handling of its
// own before its route: the port is Exposed and has endpoints somewhere
// (so traffic is either forwarded, or short-circuited and otherwise
// dropped). This is kube-proxy's EXT chain.
func (pl *PortPlan) UsesExternalChain() bool { return pl.Exposed && pl.HasEndpoints() }

// Reachable returns every endpoint some route of the plan may send traffic
// to (the union of Cluster and Local), sorted by address.
func (pl *PortPlan) Reachable() []endpoints.Endpoint { return pl.Port.Topology.Reachable() }

// AllowedSources returns the sources a firewalled load-balancer IP admits:
// the port's source ranges without overlaps (each range once, none inside
// another), plus the load-balancer IPs themselves when a range contains one
// of nodeIPs, since a node that has the VIP as a local address loops its
// own traffic to it back with the VIP as source. It returns nil when the
// plan has no Firewall.
func (pl *PortPlan) AllowedSources(nodeIPs []netip.Addr) []netip.Prefix {
	if !pl.Firewall {
		return nil
	}
	p := pl.Port
	out := make([]netip.Prefix, 0, len(p.LoadBalancerSourceRanges)+len(p.LoadBalancerIPs))
	out = append(out, p.LoadBalancerSourceRanges...)
	if slices.ContainsFunc(p.LoadBalancerSourceRanges, func(r netip.Prefix) bool {
		return slices.ContainsFunc(nodeIPs, func(a netip.Addr) bool { return r.Contains(a.Unmap()) })
	}) {
		for _, a := range p.LoadBalancerIPs {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return netprefix.Disjoint(out)
}
