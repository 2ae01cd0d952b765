package servicemap

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/affinity"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/topology"
)

// ServicePort is everything a data plane needs to program one service port
// on one node. Values reached from a Snapshot are shared between snapshots
// and goroutines: they MUST NOT be modified.
type ServicePort struct {
	Name ServicePortName

	// ClusterIP is the service's cluster IP of the tracker's IP family.
	ClusterIP netip.Addr
	Port      uint16
	Protocol  v1.Protocol
	// NodePort is 0 when the port has none.
	NodePort uint16
	// ExternalIPs and LoadBalancerIPs are of the tracker's family, sorted.
	// LoadBalancerIPs holds the status ingress IPs in VIP mode (ipMode Proxy
	// addresses are the load balancer's business, not the node's).
	ExternalIPs     []netip.Addr
	LoadBalancerIPs []netip.Addr
	// LoadBalancerSourceRanges are the service's source ranges of the
	// tracker's family, trimmed and masked, sorted. Empty means any source.
	LoadBalancerSourceRanges []netip.Prefix

	Affinity affinity.Policy
	// InternalTrafficPolicy and ExternalTrafficPolicy are the effective
	// policies: ExternalTrafficPolicy is Local only for NodePort and
	// LoadBalancer services that ask for it.
	InternalTrafficPolicy v1.ServiceInternalTrafficPolicy
	ExternalTrafficPolicy v1.ServiceExternalTrafficPolicy
	// HealthCheckNodePort is set for LoadBalancer services with
	// externalTrafficPolicy Local; 0 otherwise.
	HealthCheckNodePort uint16

	// Endpoints are all endpoints of the port, sorted by address.
	Endpoints []endpoints.Endpoint
	// Topology says which of them this node uses, for which traffic.
	Topology topology.Result
}

// ExternallyAccessible reports whether the port is reachable through a node
// port, an external IP or a load-balancer IP.
func (p *ServicePort) ExternallyAccessible() bool {
	return p.NodePort != 0 || len(p.ExternalIPs) != 0 || len(p.LoadBalancerIPs) != 0
}

// Policy returns the traffic policies in the form topology.Categorize takes.
func (p *ServicePort) Policy() topology.Policy {
	return topology.Policy{
		InternalLocal:        p.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal,
		ExternalLocal:        p.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal,
		ExternallyAccessible: p.ExternallyAccessible(),
	}
}

// UsedEndpoints returns every endpoint this node may send traffic to for the
// port (the union of its Cluster and Local endpoints), sorted by address.
func (p *ServicePort) UsedEndpoints() []endpoints.Endpoint { return p.Topology.Reachable() }

// Equal reports whether two service ports are identical in every field.
func (p *ServicePort) Equal(o *ServicePort) bool {
	if p == o {
		return true
	}
	if p == nil || o == nil {
		return false
	}
	return p.sameService(o) &&
		endpoints.EqualLists(p.Endpoints, o.Endpoints) &&
		sameResult(p.Topology, o.Topology)
}

// sameService compares the fields that come from the Service object.
func (p *ServicePort) sameService(o *ServicePort) bool {
	return p.Name == o.Name && p.ClusterIP == o.ClusterIP && p.Port == o.Port &&
		p.Protocol == o.Protocol && p.NodePort == o.NodePort &&
		slices.Equal(p.ExternalIPs, o.ExternalIPs) &&
		slices.Equal(p.LoadBalancerIPs, o.LoadBalancerIPs) &&
		slices.Equal(p.LoadBalancerSourceRanges, o.LoadBalancerSourceRanges) &&
		p.Affinity == o.Affinity &&
		p.InternalTrafficPolicy == o.InternalTrafficPolicy &&
		p.ExternalTrafficPolicy == o.ExternalTrafficPolicy &&
		p.HealthCheckNodePort == o.HealthCheckNodePort
}

func sameResult(a, b topology.Result) bool {
	return a.HasEndpoints == b.HasEndpoints && a.Mode == b.Mode &&
		(a.Cluster == nil) == (b.Cluster == nil) && (a.Local == nil) == (b.Local == nil) &&
		endpoints.EqualLists(a.Cluster, b.Cluster) && endpoints.EqualLists(a.Local, b.Local)
}
