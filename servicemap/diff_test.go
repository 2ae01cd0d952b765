package servicemap_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

var (
	udp53      = []v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)}
	udp53Slice = []discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 5353, v1.ProtocolUDP)}
)

func staleSummary(c servicemap.Changes) (services, eps []string) {
	for _, p := range c.StaleServices {
		services = append(services, p.Name.String())
	}
	for _, e := range c.StaleEndpoints {
		eps = append(eps, e.Service.Name.String()+" "+e.Endpoint.String())
	}
	return services, eps
}

func TestDiffStaleUDP(t *testing.T) {
	svc := servicemaptest.Service("ns", "dns", "10.96.0.53", udp53)
	two := servicemaptest.Slice("ns", "dns", "dns-1", udp53Slice, []servicemaptest.Endpoint{servicemaptest.Ready("10.0.0.1", ""), servicemaptest.Ready("10.0.0.2", "")})
	one := servicemaptest.Slice("ns", "dns", "dns-1", udp53Slice, []servicemaptest.Endpoint{servicemaptest.Ready("10.0.0.1", ""), servicemaptest.NotReady("10.0.0.2", "")})
	none := servicemaptest.Slice("ns", "dns", "dns-1", udp53Slice, nil)

	tests := []struct {
		name         string
		before       func(*servicemap.Tracker)
		change       func(*servicemap.Tracker)
		wantServices []string
		wantEps      []string
	}{
		{
			name:    "endpoint turns not ready",
			before:  func(tr *servicemap.Tracker) { tr.OnServiceAdd(svc); tr.OnEndpointSliceAdd(two) },
			change:  func(tr *servicemap.Tracker) { tr.OnEndpointSliceUpdate(two, one) },
			wantEps: []string{"ns/dns:dns 10.0.0.2:5353"},
		},
		{
			name:         "service gains endpoints",
			before:       func(tr *servicemap.Tracker) { tr.OnServiceAdd(svc); tr.OnEndpointSliceAdd(none) },
			change:       func(tr *servicemap.Tracker) { tr.OnEndpointSliceUpdate(none, two) },
			wantServices: []string{"ns/dns:dns"},
		},
		{
			name:         "service deleted",
			before:       func(tr *servicemap.Tracker) { tr.OnServiceAdd(svc); tr.OnEndpointSliceAdd(two) },
			change:       func(tr *servicemap.Tracker) { tr.OnServiceDelete(svc) },
			wantServices: []string{"ns/dns:dns"},
		},
		{
			name:    "all endpoints removed",
			before:  func(tr *servicemap.Tracker) { tr.OnServiceAdd(svc); tr.OnEndpointSliceAdd(two) },
			change:  func(tr *servicemap.Tracker) { tr.OnEndpointSliceDelete(two) },
			wantEps: []string{"ns/dns:dns 10.0.0.1:5353", "ns/dns:dns 10.0.0.2:5353"},
		},
		{
			name: "TCP changes are not stale UDP",
			before: func(tr *servicemap.Tracker) {
				tr.OnServiceAdd(servicemaptest.Service("ns", "dns", "10.96.0.53", tcp80))
				tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "dns", "dns-1", sliceP, []servicemaptest.Endpoint{servicemaptest.Ready("10.0.0.1", "")}))
			},
			change: func(tr *servicemap.Tracker) { tr.OnServiceDelete(servicemaptest.Service("ns", "dns", "", nil)) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := servicemap.NewTracker(servicemap.Options{})
			tt.before(tr)
			prev := tr.Snapshot()
			tt.change(tr)
			services, eps := staleSummary(servicemap.Diff(prev, tr.Snapshot()))
			if diff := cmp.Diff(tt.wantServices, services); diff != "" {
				t.Errorf("stale services (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEps, eps); diff != "" {
				t.Errorf("stale endpoints (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiffAddedUpdatedRemoved(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	a := servicemaptest.Service("ns", "a", "10.96.0.1", tcp80)
	b := servicemaptest.Service("ns", "b", "10.96.0.2", tcp80)
	tr.OnServiceAdd(a)
	tr.OnServiceAdd(b)
	s1 := tr.Snapshot()
	c := servicemap.Diff(nil, s1)
	if len(c.Added) != 2 || c.From != 0 || c.To != 1 {
		t.Fatalf("full diff: %d added, from %d to %d", len(c.Added), c.From, c.To)
	}
	tr.OnServiceDelete(a)
	b2 := b.DeepCopy()
	b2.Spec.Ports[0].Port = 81
	tr.OnServiceUpdate(b, b2)
	tr.OnServiceAdd(servicemaptest.Service("ns", "c", "10.96.0.3", tcp80))
	c = servicemap.Diff(s1, tr.Snapshot())
	got := []string{}
	for _, p := range c.Added {
		got = append(got, "+"+p.Name.String())
	}
	for _, u := range c.Updated {
		got = append(got, "~"+u.New.Name.String())
	}
	for _, p := range c.Removed {
		got = append(got, "-"+p.Name.String())
	}
	if diff := cmp.Diff([]string{"+ns/c:http", "~ns/b:http", "-ns/a:http"}, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}
