package servicemap_test

import (
	"net/netip"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

func reasons(tr *servicemap.Tracker) []string {
	var out []string
	for _, w := range tr.Warnings() {
		out = append(out, w.Reason)
	}
	return out
}

// TestHostileServices: values the API server would refuse are skipped with
// a warning, and never take the ordinary neighbour with them.
func TestHostileServices(t *testing.T) {
	tests := []struct {
		name   string
		svc    *v1.Service
		want   []string // ports of the hostile Service in the snapshot
		reason string
	}{
		{"other-family cluster IP, declared IPv4", servicemaptest.Service("ns", "bad", "fd00::10", tcp80, func(s *v1.Service) {
			s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol}
		}), nil, servicemap.ReasonBadClusterIP},
		{"loopback cluster IP", servicemaptest.Service("ns", "bad", "127.0.0.1", tcp80), nil, servicemap.ReasonSpecialAddress},
		{"unspecified cluster IP", servicemaptest.Service("ns", "bad", "0.0.0.0", tcp80), nil, servicemap.ReasonSpecialAddress},
		{"multicast cluster IP", servicemaptest.Service("ns", "bad", "224.0.0.1", tcp80), nil, servicemap.ReasonSpecialAddress},
		{"garbage cluster IP", servicemaptest.Service("ns", "bad", "10.96.0.300", tcp80), nil, servicemap.ReasonBadClusterIP},
		{"metadata address as external IP", servicemaptest.Service("ns", "bad", "10.96.0.5", tcp80, externalIPs("169.254.169.254")),
			[]string{"ns/bad:http/TCP"}, servicemap.ReasonSpecialAddress},
		{"loopback load-balancer IP", servicemaptest.Service("ns", "bad", "10.96.0.5", tcp80, ingress("127.0.0.1")),
			[]string{"ns/bad:http/TCP"}, servicemap.ReasonSpecialAddress},
		{"name with a quote", servicemaptest.Service("ns", `bad"x`, "10.96.0.5", tcp80), nil, servicemap.ReasonBadName},
		{"namespace with a brace", servicemaptest.Service("n}s", "bad", "10.96.0.5", tcp80), nil, servicemap.ReasonBadName},
		{"port name with a newline", servicemaptest.Service("ns", "bad", "10.96.0.5", []v1.ServicePort{
			servicemaptest.Port("a\nb", 80, v1.ProtocolTCP), servicemaptest.Port("ok", 81, v1.ProtocolTCP),
		}), []string{"ns/bad:ok/TCP"}, servicemap.ReasonBadName},
		{"port listed twice", servicemaptest.Service("ns", "bad", "10.96.0.5", []v1.ServicePort{
			servicemaptest.Port("http", 80, v1.ProtocolTCP), servicemaptest.Port("http", 81, v1.ProtocolTCP),
		}), []string{"ns/bad:http/TCP"}, servicemap.ReasonBadServicePort},
		{"port out of range", servicemaptest.Service("ns", "bad", "10.96.0.5", []v1.ServicePort{
			servicemaptest.Port("http", 70000, v1.ProtocolTCP),
		}), []string{}, servicemap.ReasonBadServicePort},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := servicemap.NewTracker(servicemap.Options{})
			tr.OnServiceAdd(servicemaptest.Service("ns", "good", "10.96.0.1", tcp80))
			before := tr.Snapshot()
			tr.OnServiceAdd(tc.svc)
			snap := tr.Snapshot()
			var got []string
			for _, p := range snap.Ports() {
				if p.Name.Name != "good" {
					got = append(got, p.Name.String()+"/"+string(p.Protocol))
				}
			}
			if len(got) != len(tc.want) || (len(got) > 0 && !slices.Equal(got, tc.want)) {
				t.Errorf("hostile Service's ports = %v, want %v", got, tc.want)
			}
			if !slices.Contains(reasons(tr), tc.reason) {
				t.Errorf("warnings %v lack %s", tr.Warnings(), tc.reason)
			}
			good := servicemap.ServicePortName{Namespace: "ns", Name: "good", Port: "http", Protocol: v1.ProtocolTCP}
			if snap.Lookup(good) == nil || snap.Lookup(good).ClusterIP != before.Lookup(good).ClusterIP {
				t.Errorf("the neighbour changed: %v", snap.Lookup(good))
			}
			for _, p := range snap.Ports() {
				for _, a := range slices.Concat([]netip.Addr{p.ClusterIP}, p.ExternalIPs, p.LoadBalancerIPs) {
					if !a.Is4() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
						t.Errorf("%s carries %s into the IPv4 snapshot", p.Name, a)
					}
				}
			}
		})
	}
}

// TestSourceRanges: a zero-length range admits everyone (an empty, non-nil
// list: "restricted to everyone"); ranges only of the other family leave
// this family open, with a warning.
func TestSourceRanges(t *testing.T) {
	lb := func(ranges ...string) *v1.Service {
		return servicemaptest.Service("ns", "lb", "10.96.0.1", tcp80, ingress("192.0.2.1"), func(s *v1.Service) {
			s.Spec.LoadBalancerSourceRanges = ranges
		})
	}
	tests := []struct {
		name   string
		ranges []string
		want   []string // nil: no restriction recorded
		warn   string
	}{
		{"none", nil, nil, ""},
		{"masked and sorted", []string{" 198.51.100.7/24", "10.0.0.0/8", "10.1.0.0/16"}, []string{"10.0.0.0/8", "10.1.0.0/16", "198.51.100.0/24"}, ""},
		{"zero length", []string{"10.0.0.0/8", "0.0.0.0/0"}, []string{}, ""},
		{"other family only", []string{"fd00::/8"}, nil, servicemap.ReasonSourceRanges},
		{"not a CIDR", []string{"nope", "10.0.0.0/8"}, []string{"10.0.0.0/8"}, servicemap.ReasonBadSourceRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := servicemap.NewTracker(servicemap.Options{})
			tr.OnServiceAdd(lb(tc.ranges...))
			p := tr.Snapshot().Ports()[0]
			got := p.LoadBalancerSourceRanges
			if (got == nil) != (tc.want == nil) || !slices.Equal(addrs(got), append([]string{}, tc.want...)) {
				t.Errorf("LoadBalancerSourceRanges = %#v, want %#v", got, tc.want)
			}
			rs := reasons(tr)
			if tc.warn != "" && !slices.Contains(rs, tc.warn) || tc.warn == "" && len(rs) > 0 {
				t.Errorf("warnings = %v, want %q", rs, tc.warn)
			}
		})
	}
}

// TestServiceCIDRs: ranges of ServiceCIDR objects and of Options, of the
// Tracker's family, counted per object; every change is in Changes.
func TestServiceCIDRs(t *testing.T) {
	cidr := func(name string, cidrs ...string) *networkingv1.ServiceCIDR {
		return &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.ServiceCIDRSpec{CIDRs: cidrs}}
	}
	tr := servicemap.NewTracker(servicemap.Options{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/16")}})
	s0 := tr.Snapshot()
	if got := addrs(s0.ServiceCIDRs()); !slices.Equal(got, []string{"10.96.0.0/16"}) {
		t.Fatalf("static ranges = %v", got)
	}
	tr.OnServiceCIDRAdd(cidr("kubernetes", "10.96.0.0/12", "fd00:96::/112"))
	tr.OnServiceCIDRAdd(cidr("extra", "10.200.0.0/24", "10.96.0.0/12"))
	s1 := tr.Snapshot()
	if got := addrs(s1.ServiceCIDRs()); !slices.Equal(got, []string{"10.96.0.0/12", "10.200.0.0/24"}) {
		t.Errorf("ranges = %v, want the union, nested ones folded, no IPv6", got)
	}
	c := servicemap.Diff(s0, s1)
	if !c.ServiceCIDRsChanged || !slices.Equal(addrs(c.ServiceCIDRs), addrs(s1.ServiceCIDRs())) {
		t.Errorf("Diff: ServiceCIDRsChanged=%v %v", c.ServiceCIDRsChanged, c.ServiceCIDRs)
	}
	if got := servicemap.Apply(s0, c); !slices.Equal(addrs(got.ServiceCIDRs()), addrs(s1.ServiceCIDRs())) {
		t.Errorf("Apply: ranges %v", got.ServiceCIDRs())
	}
	// Deleting one object keeps a range another still lists.
	tr.OnServiceCIDRDelete(cidr("kubernetes"))
	if got := addrs(tr.Snapshot().ServiceCIDRs()); !slices.Equal(got, []string{"10.96.0.0/12", "10.200.0.0/24"}) {
		t.Errorf("after deleting one object: %v", got)
	}
	tr.OnServiceCIDRDelete(cidr("extra"))
	s3 := tr.Snapshot()
	if got := addrs(s3.ServiceCIDRs()); !slices.Equal(got, []string{"10.96.0.0/16"}) {
		t.Errorf("after deleting both: %v", got)
	}
	if c := servicemap.Diff(s3, tr.Snapshot()); c.ServiceCIDRsChanged || !c.Empty() {
		t.Errorf("no change reported as %+v", c)
	}
	tr.OnServiceCIDRAdd(cidr("bad", "not-a-cidr"))
	if !slices.Contains(reasons(tr), servicemap.ReasonBadSourceRange) {
		t.Errorf("a bad ServiceCIDR is not warned about: %v", tr.Warnings())
	}
}

// TestEndpointChanges: one pass over both lists names the added, removed
// and changed endpoints.
func TestEndpointChanges(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "n1"})
	tr.OnServiceAdd(servicemaptest.Service("ns", "a", "10.96.0.1", tcp80))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "a", "a-1", sliceP, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.244.0.1", "n1"), servicemaptest.Ready("10.244.0.2", "n1"), servicemaptest.Ready("10.244.0.3", "n2"),
	}))
	s1 := tr.Snapshot()
	tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("ns", "a", "a-1", sliceP, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.244.0.2", "n1"), servicemaptest.Terminating("10.244.0.3", "n2"), servicemaptest.Ready("10.244.0.4", "n1"),
	}))
	c := servicemap.Diff(s1, tr.Snapshot())
	if len(c.Updated) != 1 {
		t.Fatalf("Updated = %v", c.Updated)
	}
	added, removed, changed := c.Updated[0].EndpointChanges()
	var a, r, ch []string
	for _, e := range added {
		a = append(a, e.Addr.String())
	}
	for _, e := range removed {
		r = append(r, e.Addr.String())
	}
	for _, e := range changed {
		if e.Old.Addr != e.New.Addr {
			t.Errorf("changed pairs %s with %s", e.Old.Addr, e.New.Addr)
		}
		ch = append(ch, e.New.Addr.String())
	}
	if !slices.Equal(a, []string{"10.244.0.4:8080"}) || !slices.Equal(r, []string{"10.244.0.1:8080"}) || !slices.Equal(ch, []string{"10.244.0.3:8080"}) {
		t.Errorf("added %v, removed %v, changed %v", a, r, ch)
	}
}
