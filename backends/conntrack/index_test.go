package conntrack

import (
	"fmt"
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

const (
	tcp = 6
	udp = protoUDP
)

// testSnapshot is the state the flow cases are judged against, for node
// "node".
func testSnapshot(t testing.TB) *servicemap.Snapshot {
	t.Helper()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	dnsPorts := []discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 5353, v1.ProtocolUDP)}
	// dns: UDP with every kind of frontend; b12 is not ready.
	tr.OnServiceAdd(servicemaptest.Service("ns", "dns", "10.96.0.10",
		[]v1.ServicePort{{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP, NodePort: 30053}},
		func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.ExternalIPs = []string{"192.0.2.10"}
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.10"}}
		}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "dns", "dns-1", dnsPorts, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.244.1.10", "node"),
		servicemaptest.Ready("10.244.1.11", "other"),
		servicemaptest.NotReady("10.244.1.12", "other"),
	}))
	// empty: UDP without endpoints.
	tr.OnServiceAdd(servicemaptest.Service("ns", "empty", "10.96.0.20",
		[]v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)}))
	// web: TCP, never touched.
	tr.OnServiceAdd(servicemaptest.Service("ns", "web", "10.96.0.30",
		[]v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "web", "web-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.10", "node")}))
	// local: internalTrafficPolicy Local; the remote endpoint is not used
	// but serves.
	tr.OnServiceAdd(servicemaptest.Service("ns", "local", "10.96.0.40",
		[]v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)},
		func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = servicemaptest.Ptr(v1.ServiceInternalTrafficPolicyLocal)
		}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "local", "local-1", dnsPorts, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.244.1.10", "node"),
		servicemaptest.Ready("10.244.1.11", "other"),
	}))
	// term: a terminating endpoint is not used while a ready one exists,
	// but serves.
	tr.OnServiceAdd(servicemaptest.Service("ns", "term", "10.96.0.50",
		[]v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "term", "term-1", dnsPorts, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.244.1.10", "other"),
		servicemaptest.Terminating("10.244.1.11", "other"),
	}))
	// collide: its external IP and port equal another service's node port.
	tr.OnServiceAdd(servicemaptest.Service("ns", "collide", "10.96.0.60",
		[]v1.ServicePort{servicemaptest.Port("dns", 30053, v1.ProtocolUDP)},
		func(s *v1.Service) { s.Spec.ExternalIPs = []string{"10.100.0.1"} }))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "collide", "collide-1", dnsPorts, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.244.1.12", "other"),
	}))
	if w := tr.Warnings(); len(w) > 0 {
		t.Fatalf("test snapshot has warnings: %v", w)
	}
	return tr.Snapshot()
}

// flowCase is one conntrack entry, reduced to what decides it: protocol,
// original destination and reply source.
type flowCase struct {
	name     string
	proto    uint8
	origDst  string
	replySrc string
	want     verdict
}

var flowCases = []flowCase{
	{"cluster IP to used endpoint", udp, "10.96.0.10:53", "10.244.1.10:5353", keep},
	{"cluster IP to other used endpoint", udp, "10.96.0.10:53", "10.244.1.11:5353", keep},
	{"cluster IP to not-ready endpoint", udp, "10.96.0.10:53", "10.244.1.12:5353", staleEndpoint},
	{"cluster IP to removed endpoint", udp, "10.96.0.10:53", "10.244.1.99:5353", staleEndpoint},
	{"cluster IP to used address, old port", udp, "10.96.0.10:53", "10.244.1.10:53", staleEndpoint},
	{"cluster IP not DNATed, has endpoints", udp, "10.96.0.10:53", "10.96.0.10:53", staleUnNATed},
	{"other port of a cluster IP", udp, "10.96.0.10:54", "10.96.0.10:54", keep},
	{"external IP to used endpoint", udp, "192.0.2.10:53", "10.244.1.11:5353", keep},
	{"external IP to removed endpoint", udp, "192.0.2.10:53", "10.244.1.99:5353", staleEndpoint},
	{"external IP not DNATed", udp, "192.0.2.10:53", "192.0.2.10:53", staleUnNATed},
	{"load-balancer IP to used endpoint", udp, "198.51.100.10:53", "10.244.1.10:5353", keep},
	{"load-balancer IP to not-ready endpoint", udp, "198.51.100.10:53", "10.244.1.12:5353", staleEndpoint},
	{"node port to used endpoint", udp, "10.100.0.7:30053", "10.244.1.10:5353", keep},
	{"node port to not-ready endpoint", udp, "10.100.0.7:30053", "10.244.1.12:5353", staleEndpoint},
	{"node port not DNATed", udp, "10.100.0.7:30053", "10.100.0.7:30053", staleUnNATed},
	{"node port number on a cluster IP", udp, "10.96.0.20:30053", "10.96.0.20:30053", keep},
	{"node port number on a TCP service's cluster IP", udp, "10.96.0.30:30053", "10.96.0.30:30053", keep},
	{"service frontend wins over node port", udp, "10.100.0.1:30053", "10.244.1.12:5353", keep},
	{"service frontend wins, its endpoint removed", udp, "10.100.0.1:30053", "10.244.1.10:5353", staleEndpoint},
	{"no endpoints, not DNATed", udp, "10.96.0.20:53", "10.96.0.20:53", staleUnNATed},
	{"no endpoints, DNATed to a former endpoint", udp, "10.96.0.20:53", "10.244.1.10:5353", staleEndpoint},
	{"internal policy Local, local endpoint", udp, "10.96.0.40:53", "10.244.1.10:5353", keep},
	{"internal policy Local, remote serving endpoint", udp, "10.96.0.40:53", "10.244.1.11:5353", keep},
	{"ready endpoint while another terminates", udp, "10.96.0.50:53", "10.244.1.10:5353", keep},
	{"terminating serving endpoint while one is ready", udp, "10.96.0.50:53", "10.244.1.11:5353", keep},
	{"TCP service", tcp, "10.96.0.30:80", "10.244.1.99:8080", keep},
	{"TCP flow to a UDP frontend", tcp, "10.96.0.10:53", "10.244.1.99:5353", keep},
	{"unrelated UDP flow", udp, "8.8.8.8:53", "8.8.8.8:53", keep},
}

func TestIndexCheck(t *testing.T) {
	x := newIndex(testSnapshot(t), nil, false)
	for _, c := range flowCases {
		got := x.check(c.proto, netip.MustParseAddrPort(c.origDst), netip.MustParseAddrPort(c.replySrc))
		if got != c.want {
			t.Errorf("%s: check(%d, %s, %s) = %v, want %v", c.name, c.proto, c.origDst, c.replySrc, got, c.want)
		}
	}
}

func TestIndexNodePortAddresses(t *testing.T) {
	x := newIndex(testSnapshot(t), []netip.Prefix{netip.MustParsePrefix("10.100.0.0/30")}, false)
	for _, c := range []flowCase{
		{"node address, not DNATed", udp, "10.100.0.2:30053", "10.100.0.2:30053", staleUnNATed},
		{"node address, DNATed to a removed endpoint", udp, "10.100.0.2:30053", "10.244.1.99:5353", staleEndpoint},
		{"other address, not DNATed", udp, "10.100.0.7:30053", "10.100.0.7:30053", keep},
		{"other address, DNATed elsewhere", udp, "203.0.113.1:30053", "10.244.1.99:5353", keep},
	} {
		got := x.check(c.proto, netip.MustParseAddrPort(c.origDst), netip.MustParseAddrPort(c.replySrc))
		if got != c.want {
			t.Errorf("%s: check(%s, %s) = %v, want %v", c.name, c.origDst, c.replySrc, got, c.want)
		}
	}
}

// TestIndexNodePortAddressesOtherFamily: prefixes of the other family only
// leave the snapshot's family unrestricted, as in the backends.
func TestIndexNodePortAddressesOtherFamily(t *testing.T) {
	x := newIndex(testSnapshot(t), []netip.Prefix{netip.MustParsePrefix("fd00:100::/64")}, false)
	for _, c := range []flowCase{
		{"node address, not DNATed", udp, "10.100.0.7:30053", "10.100.0.7:30053", staleUnNATed},
		{"node address, DNATed to a removed endpoint", udp, "10.100.0.7:30053", "10.244.1.99:5353", staleEndpoint},
	} {
		got := x.check(c.proto, netip.MustParseAddrPort(c.origDst), netip.MustParseAddrPort(c.replySrc))
		if got != c.want {
			t.Errorf("%s: check(%s, %s) = %v, want %v", c.name, c.origDst, c.replySrc, got, c.want)
		}
	}
}

func TestIndexEmpty(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	tr.OnServiceAdd(servicemaptest.Service("ns", "web", "10.96.0.30",
		[]v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	for name, snap := range map[string]*servicemap.Snapshot{"nil": nil, "TCP only": tr.Snapshot()} {
		x := newIndex(snap, nil, false)
		if !x.empty() {
			t.Errorf("%s: index not empty", name)
		}
		if v := x.check(udp, netip.MustParseAddrPort("10.96.0.30:80"), netip.MustParseAddrPort("10.244.1.1:80")); v != keep {
			t.Errorf("%s: check = %v, want keep", name, v)
		}
	}
	if newIndex(testSnapshot(t), nil, false).empty() {
		t.Errorf("index of the test snapshot is empty")
	}
}

func TestIndexIPv6(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node", IPFamily: v1.IPv6Protocol})
	tr.OnServiceAdd(servicemaptest.Service("ns", "dns", "fd00:96::10",
		[]v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "dns", "dns-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 5353, v1.ProtocolUDP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("fd00:244::10", "node")}))
	x := newIndex(tr.Snapshot(), nil, false)
	for _, c := range []flowCase{
		{"used", udp, "[fd00:96::10]:53", "[fd00:244::10]:5353", keep},
		{"removed", udp, "[fd00:96::10]:53", "[fd00:244::99]:5353", staleEndpoint},
		{"not DNATed", udp, "[fd00:96::10]:53", "[fd00:96::10]:53", staleUnNATed},
	} {
		got := x.check(c.proto, netip.MustParseAddrPort(c.origDst), netip.MustParseAddrPort(c.replySrc))
		if got != c.want {
			t.Errorf("%s: check(%s, %s) = %v, want %v", c.name, c.origDst, c.replySrc, got, c.want)
		}
	}
}

func BenchmarkIndexCheck(b *testing.B) {
	x := newIndex(testSnapshot(b), nil, false)
	dst, src := netip.MustParseAddrPort("10.96.0.10:53"), netip.MustParseAddrPort("10.244.1.12:5353")
	b.ReportAllocs()
	for b.Loop() {
		x.check(udp, dst, src)
	}
}

// BenchmarkNewIndex indexes 1,000 UDP services with 10 endpoints each, the
// work Reconcile does before it reads the table.
func BenchmarkNewIndex(b *testing.B) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	for i := range 1000 {
		name := fmt.Sprintf("svc%d", i)
		tr.OnServiceAdd(servicemaptest.Service("ns", name, fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
			[]v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)}))
		var eps []servicemaptest.Endpoint
		for j := range 10 {
			eps = append(eps, servicemaptest.Ready(fmt.Sprintf("10.244.%d.%d", i/25, (i%25)*10+j+1), "node"))
		}
		tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", name, name+"-1",
			[]discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 5353, v1.ProtocolUDP)}, eps))
	}
	snap := tr.Snapshot()
	b.ReportAllocs()
	for b.Loop() {
		newIndex(snap, nil, false)
	}
}

// TestReapTCP: with ReapTCP, a DNATed TCP flow is stale when its endpoint
// left its port, or when its port was removed; a terminating or not-ready
// endpoint still listed is kept, and nothing TCP is touched without it.
func TestReapTCP(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	svc := servicemaptest.Service("ns", "web", "10.96.0.50", []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)},
		func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort; s.Spec.Ports[0].NodePort = 30050 })
	ports := []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)}
	tr.OnServiceAdd(svc)
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "web", "web-1", ports, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.244.1.1", "node"), servicemaptest.Ready("10.244.1.2", "node"), servicemaptest.Ready("10.244.1.3", "node")}))
	s1 := tr.Snapshot()
	tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("ns", "web", "web-1", ports, []servicemaptest.Endpoint{
		servicemaptest.Terminating("10.244.1.1", "node"), servicemaptest.NotReady("10.244.1.2", "node")}))
	s2 := tr.Snapshot()
	tr.OnServiceDelete(svc)
	s3 := tr.Snapshot()

	vip := netip.MustParseAddrPort("10.96.0.50:80")
	np := netip.MustParseAddrPort("192.168.1.1:30050")
	ep := func(s string) netip.AddrPort { return netip.MustParseAddrPort(s + ":8080") }
	for _, tc := range []struct {
		name     string
		prev     *servicemap.Snapshot
		next     *servicemap.Snapshot
		reap     bool
		dst, src netip.AddrPort
		want     verdict
	}{
		{"terminating endpoint kept", s1, s2, true, vip, ep("10.244.1.1"), keep},
		{"not ready endpoint kept", s1, s2, true, vip, ep("10.244.1.2"), keep},
		{"removed endpoint", s1, s2, true, vip, ep("10.244.1.3"), staleRemoved},
		{"removed endpoint, node port", s1, s2, true, np, ep("10.244.1.3"), staleRemoved},
		{"removed endpoint, reaper off", s1, s2, false, vip, ep("10.244.1.3"), keep},
		{"removed port", s2, s3, true, vip, ep("10.244.1.1"), staleRemoved},
		{"not DNATed", s2, s3, true, vip, vip, keep},
	} {
		x := newIndex(tc.next, nil, tc.reap)
		c := servicemap.Diff(tc.prev, tc.next)
		x.addGone(&c)
		if got := x.check(protoTCP, tc.dst, tc.src); got != tc.want {
			t.Errorf("%s: check(%v via %v) = %v, want %v", tc.name, tc.src, tc.dst, got, tc.want)
		}
	}
}
