package nftables_test

import (
	"net/netip"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// thisNode is the node every test resolves for.
const thisNode = "node-a"

// objects is the input of one snapshot.
type objects struct {
	services []*v1.Service
	slices   []*discoveryv1.EndpointSlice
}

func (o objects) tracker(family v1.IPFamily) *servicemap.Tracker {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: thisNode, IPFamily: family})
	for _, s := range o.services {
		tr.OnServiceAdd(s)
	}
	for _, es := range o.slices {
		tr.OnEndpointSliceAdd(es)
	}
	return tr
}

func (o objects) snapshot(t testing.TB, family v1.IPFamily) *servicemap.Snapshot {
	t.Helper()
	tr := o.tracker(family)
	if w := tr.Warnings(); len(w) > 0 {
		t.Fatalf("test input has warnings: %v", w)
	}
	return tr.Snapshot()
}

// nodePort gives the ports numbered port this node port (a ClusterIP
// Service becomes a NodePort one).
func nodePort(port, np int32) func(*v1.Service) {
	return func(s *v1.Service) {
		if s.Spec.Type == v1.ServiceTypeClusterIP {
			s.Spec.Type = v1.ServiceTypeNodePort
		}
		s.Spec.Ports = slices.Clone(s.Spec.Ports) // servicemaptest shares the caller's slice
		for i := range s.Spec.Ports {
			if s.Spec.Ports[i].Port == port {
				s.Spec.Ports[i].NodePort = np
			}
		}
	}
}

func ports(ps ...v1.ServicePort) []v1.ServicePort { return ps }

func slicePorts(ps ...discoveryv1.EndpointPort) []discoveryv1.EndpointPort { return ps }

func eps(e ...servicemaptest.Endpoint) []servicemaptest.Endpoint { return e }

// cluster builds n ClusterIP services with m ready endpoints each, spread
// over 100 nodes (node0 is thisNode's neighbour; none is thisNode, so only
// endpoints of node-a would be hairpin candidates).
func cluster(n, m int) objects {
	svcs, slices := servicemaptest.Cluster(n, m)
	return objects{services: svcs, slices: slices}
}

func mustPrefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}
