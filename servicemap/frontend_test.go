package servicemap_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func created(at time.Time) func(*v1.Service) {
	return func(s *v1.Service) { s.CreationTimestamp = metav1.NewTime(at) }
}

func externalIPs(ips ...string) func(*v1.Service) {
	return func(s *v1.Service) { s.Spec.ExternalIPs = ips }
}

func ingress(ips ...string) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip})
		}
	}
}

// owner names the Service owning addr/TCP in the snapshot, "" for none.
func owner(s *servicemap.Snapshot, addr string) string {
	p, _ := s.Frontend(v1.ProtocolTCP, netip.MustParseAddrPort(addr))
	if p == nil {
		return ""
	}
	return p.Name.Namespace + "/" + p.Name.Name
}

func conflictWarnings(tr *servicemap.Tracker) []string {
	var out []string
	for _, w := range tr.Warnings() {
		if w.Reason == servicemap.ReasonConflict {
			out = append(out, w.Object+": "+w.Message)
		}
	}
	return out
}

// TestFrontendOwnership: every address:protocol:port has one owner, the
// same whatever order the Services arrive in (CVE-2020-8554): a cluster IP
// beats an external or load-balancer IP, then the older Service, then the
// namespace/name. The loser keeps its other frontends and is warned about,
// naming the owner.
func TestFrontendOwnership(t *testing.T) {
	victim := servicemaptest.Service("kube-system", "dns", "10.96.0.10", tcp80, created(t0.Add(time.Hour)))
	tests := []struct {
		name     string
		services []*v1.Service
		addr     string
		want     string // owner of addr
		loser    string // the Service warned about
	}{
		{"external IP naming a cluster IP", []*v1.Service{
			victim,
			servicemaptest.Service("evil", "a", "10.96.0.99", tcp80, created(t0), externalIPs("10.96.0.10")),
		}, "10.96.0.10:80", "kube-system/dns", "evil/a"},
		{"load-balancer IP naming a cluster IP", []*v1.Service{
			victim,
			servicemaptest.Service("evil", "a", "10.96.0.99", tcp80, created(t0), ingress("10.96.0.10")),
		}, "10.96.0.10:80", "kube-system/dns", "evil/a"},
		{"two external IPs: the older keeps it", []*v1.Service{
			servicemaptest.Service("b", "new", "10.96.0.2", tcp80, created(t0.Add(time.Minute)), externalIPs("192.0.2.1")),
			servicemaptest.Service("z", "old", "10.96.0.3", tcp80, created(t0), externalIPs("192.0.2.1")),
		}, "192.0.2.1:80", "z/old", "b/new"},
		{"no creationTimestamp counts as newest", []*v1.Service{
			servicemaptest.Service("a", "none", "10.96.0.2", tcp80, externalIPs("192.0.2.1")),
			servicemaptest.Service("z", "dated", "10.96.0.3", tcp80, created(t0), externalIPs("192.0.2.1")),
		}, "192.0.2.1:80", "z/dated", "a/none"},
		{"same age: namespace/name", []*v1.Service{
			servicemaptest.Service("b", "x", "10.96.0.2", tcp80, created(t0), ingress("192.0.2.1")),
			servicemaptest.Service("a", "y", "10.96.0.3", tcp80, created(t0), externalIPs("192.0.2.1")),
		}, "192.0.2.1:80", "a/y", "b/x"},
		{"two cluster IPs: the older keeps it", []*v1.Service{
			servicemaptest.Service("a", "new", "10.96.0.2", tcp80, created(t0.Add(time.Minute))),
			servicemaptest.Service("b", "old", "10.96.0.2", tcp80, created(t0)),
		}, "10.96.0.2:80", "b/old", "a/new"},
	}
	for _, tc := range tests {
		for _, order := range []string{"forward", "reverse"} {
			t.Run(tc.name+"/"+order, func(t *testing.T) {
				tr := servicemap.NewTracker(servicemap.Options{})
				svcs := tc.services
				if order == "reverse" {
					svcs = []*v1.Service{svcs[1], svcs[0]}
				}
				for _, s := range svcs {
					tr.OnServiceAdd(s)
				}
				snap := tr.Snapshot()
				if got := owner(snap, tc.addr); got != tc.want {
					t.Errorf("owner of %s = %q, want %q", tc.addr, got, tc.want)
				}
				ws := conflictWarnings(tr)
				if len(ws) != 1 || !strings.HasPrefix(ws[0], "Service "+tc.loser+":") || !strings.Contains(ws[0], tc.want) {
					t.Errorf("conflict warnings = %q, want one about %s naming %s", ws, tc.loser, tc.want)
				}
				// The loser's own cluster IP still works, unless it was
				// the contested one.
				for _, s := range svcs {
					key := s.Namespace + "/" + s.Name
					ip := s.Spec.ClusterIP + ":80"
					if key == tc.loser && ip != tc.addr {
						if got := owner(snap, ip); got != key {
							t.Errorf("loser's own cluster IP %s owned by %q", ip, got)
						}
					}
				}
				// Deleting the owner hands the frontend to the loser.
				for _, s := range svcs {
					if s.Namespace+"/"+s.Name == tc.want {
						tr.OnServiceDelete(s)
					}
				}
				if got := owner(tr.Snapshot(), tc.addr); got != tc.loser {
					t.Errorf("after deleting the owner, %s owned by %q, want %q", tc.addr, got, tc.loser)
				}
				if ws := conflictWarnings(tr); len(ws) != 0 {
					t.Errorf("warnings after the conflict ended: %q", ws)
				}
			})
		}
	}
}

// TestFrontendOwnClusterIPAsExternalIP: a Service listing its own cluster
// IP as an external IP owns the address once, as its cluster IP.
func TestFrontendOwnClusterIPAsExternalIP(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	tr.OnServiceAdd(servicemaptest.Service("ns", "a", "10.96.0.1", tcp80, externalIPs("10.96.0.1", "192.0.2.7")))
	snap := tr.Snapshot()
	p, kind := snap.Frontend(v1.ProtocolTCP, netip.MustParseAddrPort("10.96.0.1:80"))
	if p == nil || kind != servicemap.FrontendClusterIP {
		t.Fatalf("Frontend(10.96.0.1:80) = %v, %v; want the port as its cluster IP", p, kind)
	}
	if _, kind := snap.Frontend(v1.ProtocolTCP, netip.MustParseAddrPort("192.0.2.7:80")); kind != servicemap.FrontendExternalIP {
		t.Errorf("192.0.2.7:80 kind = %v, want external IP", kind)
	}
	if got := addrs(snap.Ports()[0].ExternalIPs); len(got) != 1 || got[0] != "192.0.2.7" {
		t.Errorf("external IPs in the snapshot = %v, want [192.0.2.7]", got)
	}
}

// TestFrontendNodePortConflict: two Services with one node port: the older
// keeps it, the other keeps its cluster IP.
func TestFrontendNodePortConflict(t *testing.T) {
	np := func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort; s.Spec.Ports[0].NodePort = 30080 }
	tr := servicemap.NewTracker(servicemap.Options{})
	tr.OnServiceAdd(servicemaptest.Service("a", "new", "10.96.0.1", tcp80, np, created(t0.Add(time.Second))))
	tr.OnServiceAdd(servicemaptest.Service("b", "old", "10.96.0.2", tcp80, np, created(t0)))
	snap := tr.Snapshot()
	if p := snap.NodePort(v1.ProtocolTCP, 30080); p == nil || p.Name.Name != "old" {
		t.Fatalf("NodePort(30080) = %v, want b/old", p)
	}
	if p := snap.Lookup(servicemap.ServicePortName{Namespace: "a", Name: "new", Port: "http", Protocol: v1.ProtocolTCP}); p == nil || p.NodePort != 0 {
		t.Errorf("a/new = %+v, want its port without the node port", p)
	}
	if p := snap.NodePort(v1.ProtocolUDP, 30080); p != nil {
		t.Errorf("NodePort(UDP 30080) = %v, want nil", p)
	}
}

// TestFrontendLookupAllocs: the lookups a data plane makes per connection
// allocate nothing.
func TestFrontendLookupAllocs(t *testing.T) {
	svcs, slices := servicemaptest.Cluster(200, 3)
	tr := servicemap.NewTracker(servicemap.Options{})
	for _, s := range svcs {
		tr.OnServiceAdd(s)
	}
	for _, s := range slices {
		tr.OnEndpointSliceAdd(s)
	}
	snap := tr.Snapshot()
	first := snap.Ports()[0]
	addr := netip.AddrPortFrom(first.ClusterIP, first.Port)
	if p, _ := snap.Frontend(first.Protocol, addr); p != first {
		t.Fatalf("Frontend(%s) = %v, want %v", addr, p, first.Name)
	}
	if n := testing.AllocsPerRun(100, func() {
		snap.Frontend(first.Protocol, addr)
		snap.NodePort(first.Protocol, 30000)
	}); n != 0 {
		t.Errorf("Frontend+NodePort allocate %v times per call", n)
	}
}

// TestNodeAddressWarning: an external IP that is one of the node's own
// addresses is warned about (it takes that port from the node).
func TestNodeAddressWarning(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "n1"})
	node := servicemaptest.Node("n1", "z")
	node.Status.Addresses = []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "192.0.2.10"}}
	tr.OnNodeAdd(node)
	tr.OnServiceAdd(servicemaptest.Service("ns", "a", "10.96.0.1", tcp80, externalIPs("192.0.2.10")))
	var got []string
	for _, w := range tr.Warnings() {
		if w.Reason == servicemap.ReasonNodeAddress {
			got = append(got, w.Message)
		}
	}
	if len(got) != 1 || !strings.Contains(got[0], "192.0.2.10") || !strings.Contains(got[0], "n1") {
		t.Errorf("node-address warnings = %q", got)
	}
}
