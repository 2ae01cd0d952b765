package servicemap_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// world is a random set of objects drawn from a small universe, so that
// random event sequences collide on the same names often.
type world struct {
	services map[string]*v1.Service
	slices   map[string]*discoveryv1.EndpointSlice
	zone     string
}

func randomService(r *rand.Rand, name string) *v1.Service {
	ports := []v1.ServicePort{servicemaptest.Port("p", 80, v1.ProtocolTCP)}
	if r.IntN(2) == 0 {
		ports = append(ports, servicemaptest.Port("u", 53, v1.ProtocolUDP))
	}
	return servicemaptest.Service("ns", name, fmt.Sprintf("10.96.0.%d", 1+r.IntN(3)), ports, func(s *v1.Service) {
		if r.IntN(3) == 0 {
			s.Spec.Type = v1.ServiceTypeNodePort
			s.Spec.Ports[0].NodePort = 30000 + int32(r.IntN(2))
			if r.IntN(2) == 0 {
				s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			}
		}
		if r.IntN(4) == 0 {
			s.Spec.InternalTrafficPolicy = servicemaptest.Ptr(v1.ServiceInternalTrafficPolicyLocal)
		}
		// Claims on other Services' addresses: ownership must not depend
		// on event order either.
		if r.IntN(3) == 0 {
			s.Spec.ExternalIPs = []string{fmt.Sprintf("10.96.0.%d", 1+r.IntN(3))}
		}
		if r.IntN(4) == 0 {
			s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "192.0.2.1"}}
		}
	})
}

func randomSlice(r *rand.Rand, name string) *discoveryv1.EndpointSlice {
	var eps []servicemaptest.Endpoint
	for i := r.IntN(4); i > 0; i-- {
		node := []string{"n1", "n2"}[r.IntN(2)]
		ip := fmt.Sprintf("10.0.0.%d", 1+r.IntN(4))
		var e servicemaptest.Endpoint
		switch r.IntN(3) {
		case 0:
			e = servicemaptest.Ready(ip, node)
		case 1:
			e = servicemaptest.Terminating(ip, node)
		default:
			e = servicemaptest.NotReady(ip, node)
		}
		if r.IntN(2) == 0 {
			e.ZoneHints = []string{[]string{"z1", "z2"}[r.IntN(2)]}
		}
		eps = append(eps, e)
	}
	svc := []string{"a", "b", "c"}[r.IntN(3)]
	ports := []discoveryv1.EndpointPort{servicemaptest.SlicePort("p", 8080, v1.ProtocolTCP), servicemaptest.SlicePort("u", 5353, v1.ProtocolUDP)}
	return servicemaptest.Slice("ns", svc, name, ports, eps)
}

// TestEventOrderProperty checks two contracts over random event sequences:
// any order of events ends in the same snapshot as adding the final objects
// at once, and applying each Diff to the previous snapshot reproduces the
// next one.
func TestEventOrderProperty(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		tr := servicemap.NewTracker(servicemap.Options{NodeName: "n1"})
		w := world{services: map[string]*v1.Service{}, slices: map[string]*discoveryv1.EndpointSlice{}}
		prev := tr.Snapshot()
		for step := 0; step < 40; step++ {
			switch r.IntN(7) {
			case 0, 1:
				name := []string{"a", "b", "c"}[r.IntN(3)]
				svc := randomService(r, name)
				tr.OnServiceUpdate(w.services[name], svc)
				w.services[name] = svc
			case 2:
				name := []string{"a", "b", "c"}[r.IntN(3)]
				if old := w.services[name]; old != nil {
					tr.OnServiceDelete(old)
					delete(w.services, name)
				}
			case 3, 4:
				name := []string{"s1", "s2", "s3", "s4"}[r.IntN(4)]
				es := randomSlice(r, name)
				tr.OnEndpointSliceUpdate(w.slices[name], es)
				w.slices[name] = es
			case 5:
				name := []string{"s1", "s2", "s3", "s4"}[r.IntN(4)]
				if old := w.slices[name]; old != nil {
					tr.OnEndpointSliceDelete(old)
					delete(w.slices, name)
				}
			case 6:
				w.zone = []string{"", "z1", "z2"}[r.IntN(3)]
				tr.OnNodeUpdate(nil, servicemaptest.Node("n1", w.zone))
			}
			if r.IntN(3) == 0 {
				next := tr.Snapshot()
				checkDiffExact(t, seed, prev, next)
				prev = next
			}
		}
		final := tr.Snapshot()
		checkDiffExact(t, seed, prev, final)

		fresh := servicemap.NewTracker(servicemap.Options{NodeName: "n1"})
		fresh.OnNodeAdd(servicemaptest.Node("n1", w.zone))
		for _, es := range w.slices { // slices first: order must not matter
			fresh.OnEndpointSliceAdd(es)
		}
		for _, svc := range w.services {
			fresh.OnServiceAdd(svc)
		}
		if d := portsDiff(final, fresh.Snapshot()); d != "" {
			t.Fatalf("seed %d: incremental and fresh snapshots differ: %s", seed, d)
		}
		checkDiffExact(t, seed, nil, final)
	}
}

func checkDiffExact(t *testing.T, seed uint64, prev, next *servicemap.Snapshot) {
	t.Helper()
	c := servicemap.Diff(prev, next)
	if c.Empty() != (portsDiff(prev, next) == "") {
		t.Fatalf("seed %d: Diff empty=%v but snapshots differ=%q", seed, c.Empty(), portsDiff(prev, next))
	}
	if d := portsDiff(servicemap.Apply(prev, c), next); d != "" {
		t.Fatalf("seed %d: Apply(prev, Diff(prev, next)) != next: %s", seed, d)
	}
	if prev != nil && next.Version() != prev.Version() && next.Version() != prev.Version()+1 && c.Empty() {
		t.Fatalf("seed %d: version moved from %d to %d with no change", seed, prev.Version(), next.Version())
	}
}

func portsDiff(a, b *servicemap.Snapshot) string {
	pa, pb := a.Ports(), b.Ports()
	if len(pa) != len(pb) {
		return fmt.Sprintf("%d ports vs %d", len(pa), len(pb))
	}
	for i := range pa {
		if !pa[i].Equal(pb[i]) {
			return fmt.Sprintf("port %s differs: %+v vs %+v", pa[i].Name, *pa[i], *pb[i])
		}
	}
	return ""
}
