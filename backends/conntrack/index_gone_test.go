package conntrack

import (
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// goneSnapshots returns two snapshots and their Diff: "old" (UDP, every
// kind of frontend) is deleted, "moved" loses its external IP and one
// endpoint, and "reuser" takes old's load-balancer IP.
func goneSnapshots(t *testing.T) (*servicemap.Snapshot, servicemap.Changes) {
	t.Helper()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	ports := []discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 5353, v1.ProtocolUDP)}
	old := servicemaptest.Service("ns", "old", "10.96.1.10",
		[]v1.ServicePort{{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP, NodePort: 30100}},
		func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.ExternalIPs = []string{"192.0.2.20"}
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.20"}}
		})
	tr.OnServiceAdd(old)
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "old", "old-1", ports,
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.20", "node"), servicemaptest.Ready("10.244.1.21", "other")}))
	moved := func(ext ...string) *v1.Service {
		return servicemaptest.Service("ns", "moved", "10.96.1.40", []v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)},
			func(s *v1.Service) { s.Spec.ExternalIPs = ext })
	}
	tr.OnServiceAdd(moved("192.0.2.40"))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "moved", "moved-1", ports,
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.40", "node"), servicemaptest.Ready("10.244.1.41", "node")}))
	s1 := tr.Snapshot()

	tr.OnServiceDelete(old)
	tr.OnServiceUpdate(nil, moved())
	tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("ns", "moved", "moved-1", ports,
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.40", "node")}))
	tr.OnServiceAdd(servicemaptest.Service("ns", "reuser", "10.96.1.50", []v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)},
		func(s *v1.Service) { s.Spec.ExternalIPs = []string{"198.51.100.20"} }))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "reuser", "reuser-1", ports,
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.50", "node")}))
	s2 := tr.Snapshot()
	c := servicemap.Diff(s1, s2)
	if len(c.StaleServices) == 0 || len(c.StaleEndpoints) == 0 {
		t.Fatalf("Diff = %+v, want stale services and endpoints", c)
	}
	return s2, c
}

func TestIndexGone(t *testing.T) {
	next, c := goneSnapshots(t)
	x := newIndex(next, nil, false)
	plain := newIndex(next, nil, false) // what Reconcile alone judges by
	x.addGone(&c)
	for _, tc := range []struct {
		flowCase
		before verdict // without the Diff
	}{
		{flowCase{"removed cluster IP to its endpoint", udp, "10.96.1.10:53", "10.244.1.20:5353", staleGone}, keep},
		{flowCase{"removed cluster IP to its other endpoint", udp, "10.96.1.10:53", "10.244.1.21:5353", staleGone}, keep},
		{flowCase{"removed cluster IP, not DNATed", udp, "10.96.1.10:53", "10.96.1.10:53", keep}, keep},
		{flowCase{"removed cluster IP to a stranger", udp, "10.96.1.10:53", "10.244.1.99:5353", keep}, keep},
		{flowCase{"removed cluster IP, TCP", tcp, "10.96.1.10:53", "10.244.1.20:5353", keep}, keep},
		{flowCase{"removed external IP to its endpoint", udp, "192.0.2.20:53", "10.244.1.20:5353", staleGone}, keep},
		{flowCase{"removed external IP, not DNATed", udp, "192.0.2.20:53", "192.0.2.20:53", keep}, keep},
		{flowCase{"removed node port to its endpoint", udp, "10.100.0.7:30100", "10.244.1.21:5353", staleGone}, keep},
		{flowCase{"removed node port, not DNATed", udp, "10.100.0.7:30100", "10.100.0.7:30100", keep}, keep},
		{flowCase{"reused address, old endpoint", udp, "198.51.100.20:53", "10.244.1.20:5353", staleEndpoint}, staleEndpoint},
		{flowCase{"reused address, new endpoint", udp, "198.51.100.20:53", "10.244.1.50:5353", keep}, keep},
		{flowCase{"removed external IP to the removed endpoint", udp, "192.0.2.40:53", "10.244.1.41:5353", staleGone}, keep},
		{flowCase{"kept cluster IP to the removed endpoint", udp, "10.96.1.40:53", "10.244.1.41:5353", staleEndpoint}, staleEndpoint},
		{flowCase{"kept cluster IP to the kept endpoint", udp, "10.96.1.40:53", "10.244.1.40:5353", keep}, keep},
	} {
		dst, src := netip.MustParseAddrPort(tc.origDst), netip.MustParseAddrPort(tc.replySrc)
		if got := x.check(tc.proto, dst, src); got != tc.want {
			t.Errorf("%s: check = %v, want %v", tc.name, got, tc.want)
		}
		if got := plain.check(tc.proto, dst, src); got != tc.before {
			t.Errorf("%s: without the Diff, check = %v, want %v", tc.name, got, tc.before)
		}
	}
}

// A Diff that removes the only UDP service leaves an index that is not
// empty: its flows still have to be found.
func TestIndexGoneOnly(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	svc := servicemaptest.Service("ns", "dns", "10.96.0.10", []v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)})
	tr.OnServiceAdd(svc)
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "dns", "dns-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 5353, v1.ProtocolUDP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.10", "node")}))
	s1 := tr.Snapshot()
	tr.OnServiceDelete(svc)
	s2 := tr.Snapshot()
	c := servicemap.Diff(s1, s2)
	x := newIndex(s2, nil, false)
	if !x.empty() {
		t.Fatal("index of an empty snapshot is not empty")
	}
	x.addGone(&c)
	if x.empty() {
		t.Error("index with a removed UDP service is empty")
	}
}
