package conntrack

import (
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// Fidelity with kube-proxy v1.37.2's conntrack reconciler,
// pkg/proxy/conntrack/cleanup.go CleanStaleEntries, which the nftables,
// iptables and IPVS proxiers call after a successful sync. Each row names
// the kube-proxy function or test case it mirrors; rows marked "lbkit:"
// are the documented differences (see doc.go).

// fidelitySnapshot mirrors the objects of kube-proxy's
// TestCleanStaleEntries (service "cleanup-test": a TCP, a UDP and an SCTP
// port 8000, the UDP and SCTP ones with node port 32000; endpoint
// 10.240.0.4 serving, 10.240.1.5 not, both on port 9090) and of
// TestServiceWithoutEndpoints ("empty": UDP with every kind of frontend and
// no endpoints), plus services for the conditions CleanStaleEntries says
// it ignores: terminating state, traffic policy and topology hints.
func fidelitySnapshot(t *testing.T) *servicemap.Snapshot {
	t.Helper()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	tr.OnNodeAdd(servicemaptest.Node("node", "zone-a"))
	frontends := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalIPs = []string{"192.168.99.100"}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "1.2.3.4"}}
	}
	tr.OnServiceAdd(servicemaptest.Service("test", "cleanup-test", "172.30.1.1", []v1.ServicePort{
		{Name: "test-tcp", Port: 8000, Protocol: v1.ProtocolTCP, NodePort: 32001},
		{Name: "test-udp", Port: 8000, Protocol: v1.ProtocolUDP, NodePort: 32000},
		{Name: "test-sctp", Port: 8000, Protocol: v1.ProtocolSCTP, NodePort: 32000},
	}, frontends))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("test", "cleanup-test", "cleanup-test-0", []discoveryv1.EndpointPort{
		servicemaptest.SlicePort("test-tcp", 9090, v1.ProtocolTCP),
		servicemaptest.SlicePort("test-udp", 9090, v1.ProtocolUDP),
		servicemaptest.SlicePort("test-sctp", 9090, v1.ProtocolSCTP),
	}, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.240.0.4", "other"),
		servicemaptest.NotReady("10.240.1.5", "other"),
	}))

	tr.OnServiceAdd(servicemaptest.Service("test", "empty", "172.30.1.2",
		[]v1.ServicePort{{Name: "test-udp", Port: 8000, Protocol: v1.ProtocolUDP, NodePort: 32100}},
		func(s *v1.Service) {
			frontends(s)
			s.Spec.ExternalIPs = []string{"192.168.99.101"}
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "1.2.3.5"}}
		}))

	udp53 := []discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 5353, v1.ProtocolUDP)}
	// policy: internalTrafficPolicy Local; this node has one endpoint.
	tr.OnServiceAdd(servicemaptest.Service("test", "policy", "172.30.2.1",
		[]v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)},
		func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = servicemaptest.Ptr(v1.ServiceInternalTrafficPolicyLocal)
		}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("test", "policy", "policy-1", udp53, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.240.2.1", "node"),
		servicemaptest.Ready("10.240.2.2", "other"),
	}))
	// term: a ready endpoint and a terminating one that still serves.
	tr.OnServiceAdd(servicemaptest.Service("test", "term", "172.30.3.1",
		[]v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("test", "term", "term-1", udp53, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.240.3.1", "other"),
		servicemaptest.Terminating("10.240.3.2", "other"),
	}))
	// hints: topology-aware routing sends this node (zone-a) to 10.240.4.1
	// only.
	tr.OnServiceAdd(servicemaptest.Service("test", "hints", "172.30.4.1",
		[]v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)}))
	hinted := func(ip, zone string) servicemaptest.Endpoint {
		ep := servicemaptest.Ready(ip, "other")
		ep.Zone, ep.ZoneHints = zone, []string{zone}
		return ep
	}
	tr.OnEndpointSliceAdd(servicemaptest.Slice("test", "hints", "hints-1", udp53, []servicemaptest.Endpoint{
		hinted("10.240.4.1", "zone-a"), hinted("10.240.4.2", "zone-b"),
	}))
	if w := tr.Warnings(); len(w) > 0 {
		t.Fatalf("fidelity snapshot has warnings: %v", w)
	}
	snap := tr.Snapshot()
	// The premises of the policy, term and hints rows: the endpoint kept
	// there is one this node's rules no longer choose.
	for name, unused := range map[string]string{"policy": "10.240.2.2:5353", "term": "10.240.3.2:5353", "hints": "10.240.4.2:5353"} {
		for p := range snap.All() {
			if p.Name.Name != name {
				continue
			}
			for _, ep := range p.UsedEndpoints() {
				if ep.Addr.String() == unused {
					t.Fatalf("%s: %s is used by this node; the row would prove nothing", name, unused)
				}
			}
		}
	}
	return snap
}

var fidelityCases = []struct {
	flowCase
	mirrors string
}{
	// TestCleanStaleEntries: UDP flows to a service IP and port are kept
	// only when DNATed to a serving endpoint, whatever the frontend kind.
	{flowCase{"cluster IP, serving endpoint", udp, "172.30.1.1:8000", "10.240.0.4:9090", keep}, "TestCleanStaleEntries"},
	{flowCase{"cluster IP, non-serving endpoint", udp, "172.30.1.1:8000", "10.240.1.5:9090", staleEndpoint}, "TestCleanStaleEntries"},
	{flowCase{"cluster IP, deleted endpoint", udp, "172.30.1.1:8000", "10.240.2.6:9090", staleEndpoint}, "TestCleanStaleEntries"},
	{flowCase{"cluster IP, serving IP, old port", udp, "172.30.1.1:8000", "10.240.0.4:8080", staleEndpoint}, "TestCleanStaleEntries (testOldEndpointPort)"},
	{flowCase{"load-balancer IP, serving endpoint", udp, "1.2.3.4:8000", "10.240.0.4:9090", keep}, "TestCleanStaleEntries"},
	{flowCase{"load-balancer IP, non-serving endpoint", udp, "1.2.3.4:8000", "10.240.1.5:9090", staleEndpoint}, "TestCleanStaleEntries"},
	{flowCase{"load-balancer IP, serving IP, old port", udp, "1.2.3.4:8000", "10.240.0.4:8080", staleEndpoint}, "TestCleanStaleEntries (testOldEndpointPort)"},
	{flowCase{"external IP, serving endpoint", udp, "192.168.99.100:8000", "10.240.0.4:9090", keep}, "TestCleanStaleEntries"},
	{flowCase{"external IP, deleted endpoint", udp, "192.168.99.100:8000", "10.240.2.6:9090", staleEndpoint}, "TestCleanStaleEntries"},
	{flowCase{"external IP, serving IP, old port", udp, "192.168.99.100:8000", "10.240.0.4:8080", staleEndpoint}, "TestCleanStaleEntries (testOldEndpointPort)"},
	// TestCleanStaleEntries: other ports of the service IPs are not
	// kube-proxy's.
	{flowCase{"cluster IP, non-service port", udp, "172.30.1.1:3000", "10.240.2.6:9090", keep}, "TestCleanStaleEntries (testNonServicePort)"},
	{flowCase{"external IP, non-service port", udp, "192.168.99.100:3000", "10.240.1.5:9090", keep}, "TestCleanStaleEntries (testNonServicePort)"},
	// TestCleanStaleEntries: node port flows, matched on the port.
	{flowCase{"node port, serving endpoint", udp, "10.0.0.1:32000", "10.240.0.4:9090", keep}, "TestCleanStaleEntries (*:NodePort)"},
	{flowCase{"node port, non-serving endpoint", udp, "10.0.0.1:32000", "10.240.1.5:9090", staleEndpoint}, "TestCleanStaleEntries (*:NodePort)"},
	{flowCase{"node port, deleted endpoint", udp, "10.0.0.1:32000", "10.240.2.6:9090", staleEndpoint}, "TestCleanStaleEntries (*:NodePort)"},
	// TestCleanStaleEntries: TCP and SCTP are never touched.
	{flowCase{"TCP, deleted endpoint", tcp, "172.30.1.1:8000", "10.240.2.6:9090", keep}, "TestCleanStaleEntries (IPPROTO_TCP)"},
	{flowCase{"SCTP, deleted endpoint", protoSCTP, "172.30.1.1:8000", "10.240.2.6:9090", keep}, "TestCleanStaleEntries (IPPROTO_SCTP)"},
	{flowCase{"SCTP node port, deleted endpoint", protoSCTP, "10.0.0.1:32000", "10.240.2.6:9090", keep}, "TestCleanStaleEntries (IPPROTO_SCTP)"},
	// TestCleanStaleEntries: flows the rules did not DNAT.
	{flowCase{"cluster IP, not DNATed", udp, "172.30.1.1:8000", "172.30.1.1:8000", staleUnNATed}, "TestCleanStaleEntries (non-DNATed)"},
	{flowCase{"load-balancer IP, not DNATed", udp, "1.2.3.4:8000", "1.2.3.4:8000", staleUnNATed}, "TestCleanStaleEntries (non-DNATed)"},
	{flowCase{"external IP, not DNATed", udp, "192.168.99.100:8000", "192.168.99.100:8000", staleUnNATed}, "TestCleanStaleEntries (non-DNATed)"},
	{flowCase{"external IP, non-service port, not DNATed", udp, "192.168.99.100:3000", "192.168.99.100:3000", keep}, "TestCleanStaleEntries (non-DNATed)"},

	// TestServiceWithoutEndpoints: every flow to a service IP and port
	// goes; node ports, TCP and other ports stay.
	{flowCase{"no endpoints, cluster IP, former endpoint", udp, "172.30.1.2:8000", "10.240.0.4:9090", staleEndpoint}, "TestServiceWithoutEndpoints"},
	{flowCase{"no endpoints, load-balancer IP, deleted endpoint", udp, "1.2.3.5:8000", "10.240.2.6:9090", staleEndpoint}, "TestServiceWithoutEndpoints"},
	{flowCase{"no endpoints, external IP, deleted endpoint", udp, "192.168.99.101:8000", "10.240.2.6:9090", staleEndpoint}, "TestServiceWithoutEndpoints"},
	{flowCase{"no endpoints, external IP, non-service port", udp, "192.168.99.101:3000", "10.240.2.6:9090", keep}, "TestServiceWithoutEndpoints"},
	{flowCase{"no endpoints, TCP", tcp, "192.168.99.101:8000", "10.240.2.6:9090", keep}, "TestServiceWithoutEndpoints"},
	{flowCase{"no endpoints, cluster IP, not DNATed", udp, "172.30.1.2:8000", "172.30.1.2:8000", staleUnNATed}, "CleanStaleEntries (empty endpoint set)"},
	{flowCase{"no endpoints, node port, not DNATed", udp, "10.0.0.1:32100", "10.0.0.1:32100", keep}, "CleanStaleEntries (node port skipped without serving endpoints)"},
	{flowCase{"lbkit: no endpoints, node port, deleted endpoint", udp, "10.0.0.1:32100", "10.240.2.6:9090", staleEndpoint}, "CleanStaleEntries skips it; a node address's DNATed flow is a service's"},

	// CleanStaleEntries: "we do not take traffic policies, topology, or
	// terminating status of the service into account".
	{flowCase{"internal policy Local, remote serving endpoint", udp, "172.30.2.1:53", "10.240.2.2:5353", keep}, "CleanStaleEntries (IsServing)"},
	{flowCase{"terminating serving endpoint, a ready one exists", udp, "172.30.3.1:53", "10.240.3.2:5353", keep}, "CleanStaleEntries (IsServing)"},
	{flowCase{"endpoint hinted for another zone", udp, "172.30.4.1:53", "10.240.4.2:5353", keep}, "CleanStaleEntries (IsServing)"},

	// lbkit: a flow to a service address and port is judged by that
	// frontend alone; kube-proxy also checks it against any node port of
	// the same number and would delete these.
	{flowCase{"lbkit: cluster IP on a node port's number", udp, "172.30.1.2:32000", "172.30.1.2:32000", keep}, "CleanStaleEntries checks serviceNodePortEndpoints next"},
}

// protoSCTP is SCTP's protocol number.
const protoSCTP = 132

func TestFidelityCleanStaleEntries(t *testing.T) {
	x := newIndex(fidelitySnapshot(t), nil, false)
	for _, c := range fidelityCases {
		got := x.check(c.proto, netip.MustParseAddrPort(c.origDst), netip.MustParseAddrPort(c.replySrc))
		if got != c.want {
			t.Errorf("%s (%s): check(%d, %s, %s) = %v, want %v", c.name, c.mirrors, c.proto, c.origDst, c.replySrc, got, c.want)
		}
	}
}

// TestFidelityNodePortAddresses: lbkit narrows node port flows to
// NodePortAddresses, which kube-proxy's reconciler does not (it matches the
// port on any address).
func TestFidelityNodePortAddresses(t *testing.T) {
	x := newIndex(fidelitySnapshot(t), []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}, false)
	for _, c := range []flowCase{
		{"node address, deleted endpoint", udp, "10.0.0.1:32000", "10.240.2.6:9090", staleEndpoint},
		{"other address, deleted endpoint", udp, "203.0.113.1:32000", "10.240.2.6:9090", keep},
		{"other address, not DNATed", udp, "203.0.113.1:32000", "203.0.113.1:32000", keep},
	} {
		got := x.check(c.proto, netip.MustParseAddrPort(c.origDst), netip.MustParseAddrPort(c.replySrc))
		if got != c.want {
			t.Errorf("%s: check(%s, %s) = %v, want %v", c.name, c.origDst, c.replySrc, got, c.want)
		}
	}
}
