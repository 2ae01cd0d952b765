package backends

import (
	"net/netip"
	"slices"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
)

// Frontend is the kind of address a connection to a service port was sent
// to: the snapshot's own (servicemap.Snapshot.Frontend tells it for an
// address).
type Frontend = servicemap.FrontendKind

const (
	FrontendClusterIP      = servicemap.FrontendClusterIP
	FrontendNodePort       = servicemap.FrontendNodePort
	FrontendExternalIP     = servicemap.FrontendExternalIP
	FrontendLoadBalancerIP = servicemap.FrontendLoadBalancerIP
)

// Source is where a connection comes from, as a data plane can tell it.
type Source uint8

const (
	// FromOutside is any source that is neither a pod nor this node, or
	// one the data plane cannot classify (no pod CIDRs configured).
	FromOutside Source = iota
	// FromPod is a pod of the cluster: a source inside the pod CIDRs.
	FromPod
	// FromNode is this node itself: a source that is one of its addresses.
	FromNode
)

func (s Source) String() string {
	switch s {
	case FromPod:
		return "pod"
	case FromNode:
		return "node"
	}
	return "outside"
}

// Connection describes one new connection to a service port.
type Connection struct {
	Frontend Frontend
	From     Source
	// PodsKnown reports that the data plane knows the pod CIDRs, so FromPod
	// can be told apart from FromOutside. Without them, kube-proxy (and
	// lbkit) masquerades no cluster-IP traffic and short-circuits no pod
	// traffic.
	PodsKnown bool
	// MasqueradeAll reports that the data plane masquerades all cluster-IP
	// traffic, pods' included (kube-proxy's masqueradeAll).
	MasqueradeAll bool
	// Addr is the client's address; it is checked against the source
	// ranges of a firewalled load-balancer IP. An invalid Addr passes.
	Addr netip.Addr
}

// Decision is what happens to one new connection.
type Decision struct {
	Verdict Verdict
	// Endpoints are the endpoints the connection is balanced over, when
	// Verdict is Forward.
	Endpoints []endpoints.Endpoint
	// Local is true when Endpoints is the Local list.
	Local bool
	// Masquerade reports that the connection leaves the node with the
	// node's address as its source.
	Masquerade bool
	// ShortCircuited reports that traffic to an external address was sent
	// to the Cluster list because it came from a pod or the node itself.
	ShortCircuited bool
	// Firewalled reports that the source is outside the load balancer's
	// source ranges (Verdict is then Drop).
	Firewalled bool
}

// Decide returns what the data plane does with c, following the plan.
// c.Frontend should be one the port has; a frontend it lacks is decided as
// if it had it.
//
// A port without endpoints rejects before its firewall is consulted, as
// kube-proxy's iptables mode does. Its nftables mode checks the firewall
// first, so a firewalled source is dropped there instead (the nftables
// backend does the same); either way the connection is refused.
func (pl *PortPlan) Decide(c Connection) Decision {
	if c.Frontend == FrontendClusterIP {
		d := decision(pl.Internal)
		d.Masquerade = d.Verdict == Forward && (c.MasqueradeAll || c.PodsKnown && c.From != FromPod)
		return d
	}
	if !pl.HasEndpoints() {
		return Decision{Verdict: Reject}
	}
	if c.Frontend == FrontendLoadBalancerIP && pl.Firewall && c.Addr.IsValid() &&
		!slices.ContainsFunc(pl.Port.LoadBalancerSourceRanges, func(r netip.Prefix) bool { return r.Contains(c.Addr.Unmap()) }) {
		return Decision{Verdict: Drop, Firewalled: true}
	}
	if pl.ShortCircuit && (c.From == FromNode || (c.From == FromPod && c.PodsKnown)) {
		return Decision{
			Verdict:        Forward,
			Endpoints:      pl.Cluster,
			Masquerade:     c.From == FromNode,
			ShortCircuited: true,
		}
	}
	d := decision(pl.External)
	d.Masquerade = d.Verdict == Forward && !d.Local
	return d
}

func decision(r Route) Decision {
	return Decision{Verdict: r.Verdict, Endpoints: r.Endpoints, Local: r.Local}
}
