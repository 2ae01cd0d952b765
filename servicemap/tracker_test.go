package servicemap_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

var (
	tcp80  = []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}
	sliceP = []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)}
)

// names returns the service port names of a snapshot, sorted.
func names(s *servicemap.Snapshot) []string {
	var out []string
	for _, p := range s.Ports() {
		out = append(out, p.Name.String()+"/"+string(p.Protocol))
	}
	return out
}

func addrs[T interface{ String() string }](list []T) []string {
	out := []string{}
	for _, a := range list {
		out = append(out, a.String())
	}
	return out
}

func TestTrackerSkipsServices(t *testing.T) {
	tests := []struct {
		name string
		opts servicemap.Options
		svc  *v1.Service
		want []string
	}{
		{"clusterIP", servicemap.Options{}, servicemaptest.Service("ns", "a", "10.96.0.1", tcp80), []string{"ns/a:http/TCP"}},
		{"headless", servicemap.Options{}, servicemaptest.Service("ns", "a", "None", tcp80), nil},
		{"no cluster IP", servicemap.Options{}, servicemaptest.Service("ns", "a", "", tcp80), nil},
		{"external name", servicemap.Options{}, servicemaptest.Service("ns", "a", "10.96.0.1", tcp80, func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeExternalName
		}), nil},
		{"other family", servicemap.Options{IPFamily: v1.IPv6Protocol}, servicemaptest.Service("ns", "a", "10.96.0.1", tcp80), nil},
		{"ipv6", servicemap.Options{IPFamily: v1.IPv6Protocol}, servicemaptest.Service("ns", "a", "fd00::1", tcp80), []string{"ns/a:http/TCP"}},
		{"proxy-name label, no proxy name", servicemap.Options{}, servicemaptest.Service("ns", "a", "10.96.0.1", tcp80, labelled(servicemap.LabelServiceProxyName, "other")), nil},
		{"proxy-name label, our name", servicemap.Options{ProxyName: "lb"}, servicemaptest.Service("ns", "a", "10.96.0.1", tcp80, labelled(servicemap.LabelServiceProxyName, "lb")), []string{"ns/a:http/TCP"}},
		{"proxy-name label, other name", servicemap.Options{ProxyName: "lb"}, servicemaptest.Service("ns", "a", "10.96.0.1", tcp80, labelled(servicemap.LabelServiceProxyName, "other")), nil},
		{"no label, proxy name set", servicemap.Options{ProxyName: "lb"}, servicemaptest.Service("ns", "a", "10.96.0.1", tcp80), nil},
		// kube-proxy (cmd/kube-proxy/app/server.go) selects Services on
		// !service-proxy-name only; the headless label filters slices.
		{"headless label on a service with a cluster IP", servicemap.Options{}, servicemaptest.Service("ns", "a", "10.96.0.1", tcp80, labelled(servicemap.LabelHeadless, "")), []string{"ns/a:http/TCP"}},
		{"dual stack picks family", servicemap.Options{IPFamily: v1.IPv6Protocol}, servicemaptest.Service("ns", "a", "10.96.0.1", tcp80, func(s *v1.Service) {
			s.Spec.ClusterIPs = []string{"10.96.0.1", "fd00::1"}
			s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
		}), []string{"ns/a:http/TCP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := servicemap.NewTracker(tt.opts)
			tr.OnServiceAdd(tt.svc)
			if diff := cmp.Diff(tt.want, names(tr.Snapshot())); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
		})
	}
}

func labelled(k, v string) func(*v1.Service) {
	return func(s *v1.Service) { s.Labels = map[string]string{k: v} }
}

func TestTrackerServiceFields(t *testing.T) {
	svc := servicemaptest.Service("shop", "web", "10.96.0.10", []v1.ServicePort{
		{Name: "http", Port: 80, Protocol: v1.ProtocolTCP, NodePort: 30080},
		{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP, NodePort: 30053},
	}, func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 32000
		s.Spec.ExternalIPs = []string{"192.0.2.2", "fd00::5", "not-an-ip", "192.0.2.1"}
		s.Spec.LoadBalancerSourceRanges = []string{" 203.0.113.0/24 ", "10.1.2.3/8", "bogus", "2001:db8::/32"}
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: servicemaptest.Ptr[int32](600)}}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{
			{IP: "198.51.100.7"},
			{IP: "198.51.100.8", IPMode: servicemaptest.Ptr(v1.LoadBalancerIPModeProxy)},
			{IP: "198.51.100.9", IPMode: servicemaptest.Ptr(v1.LoadBalancerIPModeVIP)},
			{Hostname: "lb.example"},
		}
	})
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "n1"})
	tr.OnServiceAdd(svc)
	p := tr.Snapshot().Lookup(servicemap.ServicePortName{Namespace: "shop", Name: "web", Port: "http", Protocol: v1.ProtocolTCP})
	if p == nil {
		t.Fatal("port shop/web:http not found")
	}
	got := map[string]any{
		"clusterIP":   p.ClusterIP.String(),
		"port":        p.Port,
		"nodePort":    p.NodePort,
		"externalIPs": addrs(p.ExternalIPs),
		"lbIPs":       addrs(p.LoadBalancerIPs),
		"ranges":      addrs(p.LoadBalancerSourceRanges),
		"affinity":    p.Affinity.String(),
		"etp":         string(p.ExternalTrafficPolicy),
		"itp":         string(p.InternalTrafficPolicy),
		"hc":          p.HealthCheckNodePort,
	}
	want := map[string]any{
		"clusterIP":   "10.96.0.10",
		"port":        uint16(80),
		"nodePort":    uint16(30080),
		"externalIPs": []string{"192.0.2.1", "192.0.2.2"},
		"lbIPs":       []string{"198.51.100.7", "198.51.100.9"},
		"ranges":      []string{"10.0.0.0/8", "203.0.113.0/24"},
		"affinity":    "ClientIP(600s)",
		"etp":         "Local",
		"itp":         "Cluster",
		"hc":          uint16(32000),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	var reasons []string
	for _, w := range tr.Warnings() {
		reasons = append(reasons, w.Reason)
	}
	if diff := cmp.Diff([]string{servicemap.ReasonBadExternalIP, servicemap.ReasonBadSourceRange}, reasons); diff != "" {
		t.Errorf("warnings (-want +got):\n%s\n%v", diff, tr.Warnings())
	}
}

func TestTrackerEffectivePolicies(t *testing.T) {
	// externalTrafficPolicy applies to externally accessible services:
	// NodePort, LoadBalancer, and ClusterIP with external IPs (Kubernetes'
	// ExternallyAccessible). healthCheckNodePort only to LoadBalancer+Local.
	tests := []struct {
		name    string
		mutate  func(*v1.Service)
		wantETP v1.ServiceExternalTrafficPolicy
	}{
		{"ClusterIP with external IPs", func(s *v1.Service) { s.Spec.ExternalIPs = []string{"192.0.2.1"} }, v1.ServiceExternalTrafficPolicyLocal},
		{"ClusterIP without external IPs", func(s *v1.Service) {}, v1.ServiceExternalTrafficPolicyCluster},
		{"NodePort", func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort }, v1.ServiceExternalTrafficPolicyLocal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := servicemaptest.Service("ns", "a", "10.96.0.1", tcp80, func(s *v1.Service) {
				s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
				s.Spec.HealthCheckNodePort = 32000
				tt.mutate(s)
			})
			tr := servicemap.NewTracker(servicemap.Options{})
			tr.OnServiceAdd(svc)
			p := tr.Snapshot().Ports()[0]
			if p.ExternalTrafficPolicy != tt.wantETP || p.HealthCheckNodePort != 0 {
				t.Errorf("etp=%q hc=%d, want %q and 0", p.ExternalTrafficPolicy, p.HealthCheckNodePort, tt.wantETP)
			}
		})
	}
}

func TestTrackerEndpointsAndTopology(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "n1"})
	tr.OnNodeAdd(servicemaptest.Node("n1", "z1"))
	tr.OnServiceAdd(servicemaptest.Service("ns", "web", "10.96.0.10", tcp80))
	a := servicemaptest.Ready("10.0.0.1", "n1")
	a.ZoneHints = []string{"z1"}
	b := servicemaptest.Ready("10.0.0.2", "n2")
	b.ZoneHints = []string{"z2"}
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "web", "web-1", sliceP, []servicemaptest.Endpoint{a, b}))
	p := tr.Snapshot().Ports()[0]
	if diff := cmp.Diff([]string{"10.0.0.1:8080", "10.0.0.2:8080"}, addrs(p.Endpoints)); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"10.0.0.1:8080"}, addrs(p.Topology.Cluster)); diff != "" {
		t.Errorf("cluster endpoints (-want +got):\n%s", diff)
	}
	if p.Topology.Local != nil || !p.Topology.HasEndpoints {
		t.Errorf("local=%v has=%v, want nil and true", p.Topology.Local, p.Topology.HasEndpoints)
	}
	if !p.Endpoints[0].Local || p.Endpoints[1].Local {
		t.Errorf("local flags: %+v", p.Endpoints)
	}

	// The node moves to zone z2: topology follows without any other event.
	v := tr.Snapshot().Version()
	tr.OnNodeUpdate(nil, servicemaptest.Node("n1", "z2"))
	s := tr.Snapshot()
	if s.Version() != v+1 {
		t.Errorf("version after zone change = %d, want %d", s.Version(), v+1)
	}
	if diff := cmp.Diff([]string{"10.0.0.2:8080"}, addrs(s.Ports()[0].Topology.Cluster)); diff != "" {
		t.Errorf("cluster endpoints in z2 (-want +got):\n%s", diff)
	}
}

func TestTrackerHeadlessSliceIgnored(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	tr.OnServiceAdd(servicemaptest.Service("ns", "web", "10.96.0.10", tcp80))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "web", "web-1", sliceP, []servicemaptest.Endpoint{servicemaptest.Ready("10.0.0.1", "")},
		func(es *discoveryv1.EndpointSlice) { es.Labels[servicemap.LabelHeadless] = "" }))
	p := tr.Snapshot().Ports()
	if len(p) != 1 || len(p[0].Endpoints) != 0 || p[0].Topology.HasEndpoints {
		t.Fatalf("want the service with no endpoints, got %d ports", len(p))
	}
}

func TestTrackerVersions(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	if v := tr.Snapshot().Version(); v != 0 {
		t.Fatalf("empty tracker version = %d", v)
	}
	svc := servicemaptest.Service("ns", "web", "10.96.0.10", tcp80)
	tr.OnServiceAdd(svc)
	s1 := tr.Snapshot()
	if s1.Version() != 1 {
		t.Fatalf("version = %d, want 1", s1.Version())
	}
	// A no-op update (same content, new object) keeps the snapshot.
	tr.OnServiceUpdate(svc, svc.DeepCopy())
	if s2 := tr.Snapshot(); s2 != s1 {
		t.Errorf("no-op update produced version %d", s2.Version())
	}
	// A slice for a service nobody tracks changes no port.
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "other", "o-1", sliceP, []servicemaptest.Endpoint{servicemaptest.Ready("10.0.0.9", "")}))
	if s3 := tr.Snapshot(); s3.Version() != 1 {
		t.Errorf("unrelated slice bumped version to %d", s3.Version())
	}
	tr.OnServiceDelete(svc)
	if s4 := tr.Snapshot(); s4.Version() != 2 || s4.Len() != 0 {
		t.Errorf("after delete: version %d, %d ports", s4.Version(), s4.Len())
	}
}

func TestTrackerSliceMovesBetweenServices(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	tr.OnServiceAdd(servicemaptest.Service("ns", "a", "10.96.0.1", tcp80))
	tr.OnServiceAdd(servicemaptest.Service("ns", "b", "10.96.0.2", tcp80))
	es := servicemaptest.Slice("ns", "a", "s-1", sliceP, []servicemaptest.Endpoint{servicemaptest.Ready("10.0.0.1", "")})
	tr.OnEndpointSliceAdd(es)
	moved := es.DeepCopy()
	moved.Labels[discoveryv1.LabelServiceName] = "b"
	tr.OnEndpointSliceUpdate(es, moved)
	s := tr.Snapshot()
	a := s.Service("ns", "a")[0]
	b := s.Service("ns", "b")[0]
	if len(a.Endpoints) != 0 || len(b.Endpoints) != 1 {
		t.Errorf("after relabel: a has %d endpoints, b has %d; want 0 and 1", len(a.Endpoints), len(b.Endpoints))
	}
}

func TestTrackerWarnings(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "", "orphan", sliceP, nil))
	v6 := servicemaptest.Slice("ns", "web", "web-v6", sliceP, []servicemaptest.Endpoint{servicemaptest.Ready("fd00::1", "")})
	tr.OnEndpointSliceAdd(v6)
	var got []string
	for _, w := range tr.Warnings() {
		got = append(got, w.Object+" "+w.Reason)
	}
	want := []string{"EndpointSlice ns/orphan NoServiceName", "EndpointSlice ns/web-v6 OtherIPFamily"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	tr.OnEndpointSliceDelete(v6)
	if n := len(tr.Warnings()); n != 1 {
		t.Errorf("after deleting the slice, %d warnings remain, want 1", n)
	}
}

func TestSnapshotNil(t *testing.T) {
	var s *servicemap.Snapshot
	if s.Version() != 0 || s.Len() != 0 || s.Lookup(servicemap.ServicePortName{}) != nil || len(s.Ports()) != 0 {
		t.Error("nil snapshot is not empty")
	}
	c := servicemap.Diff(nil, nil)
	if !c.Empty() {
		t.Error("Diff(nil, nil) not empty")
	}
}

func TestServicePortNameString(t *testing.T) {
	n := servicemap.ServicePortName{Namespace: "ns", Name: "web", Port: "http", Protocol: v1.ProtocolTCP}
	if n.String() != "ns/web:http" {
		t.Errorf("String() = %q", n.String())
	}
	n.Port = ""
	if n.String() != "ns/web" {
		t.Errorf("unnamed String() = %q", n.String())
	}
}

var _ = netip.Addr{}

// NodeEligible follows kube-proxy's node eligibility: the tracker's Node,
// seen, not being deleted, without the cluster autoscaler's deletion taint.
// It does not change the snapshot.
func TestTrackerNodeEligible(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "n1"})
	if tr.NodeEligible() {
		t.Error("eligible before the Node is seen")
	}
	node := servicemaptest.Node("n1", "z1")
	tr.OnNodeAdd(node)
	if !tr.NodeEligible() {
		t.Error("a plain Node is not eligible")
	}
	v := tr.Snapshot().Version()
	cases := []struct {
		name   string
		change func(*v1.Node)
		want   bool
	}{
		{"deletion taint", func(n *v1.Node) {
			n.Spec.Taints = []v1.Taint{{Key: "other", Effect: v1.TaintEffectNoSchedule}, {Key: servicemap.ToBeDeletedTaint, Effect: v1.TaintEffectNoSchedule}}
		}, false},
		{"other taints", func(n *v1.Node) {
			n.Spec.Taints = []v1.Taint{{Key: "node.kubernetes.io/unschedulable", Effect: v1.TaintEffectNoSchedule}}
		}, true},
		{"deletion timestamp", func(n *v1.Node) { n.DeletionTimestamp = &metav1.Time{Time: time.Unix(1700000000, 0)} }, false},
		// A zero timestamp is no deletion (kube-proxy's IsZero).
		{"zero deletion timestamp", func(n *v1.Node) { n.DeletionTimestamp = &metav1.Time{} }, true},
		{"unschedulable", func(n *v1.Node) { n.Spec.Unschedulable = true }, true},
	}
	for _, c := range cases {
		n := node.DeepCopy()
		c.change(n)
		tr.OnNodeUpdate(node, n)
		if got := tr.NodeEligible(); got != c.want {
			t.Errorf("%s: NodeEligible = %v, want %v", c.name, got, c.want)
		}
		other := n.DeepCopy()
		other.Name, other.Spec.Taints, other.DeletionTimestamp = "n2", []v1.Taint{{Key: servicemap.ToBeDeletedTaint}}, &metav1.Time{}
		tr.OnNodeUpdate(nil, other)
		if got := tr.NodeEligible(); got != c.want {
			t.Errorf("%s: another node's update changed NodeEligible to %v", c.name, got)
		}
	}
	if got := tr.Snapshot().Version(); got != v {
		t.Errorf("node eligibility changed the snapshot: version %d, want %d", got, v)
	}
	tr.OnNodeUpdate(nil, node)
	tr.OnNodeDelete(node)
	if tr.NodeEligible() {
		t.Error("eligible after the Node was deleted")
	}
}
