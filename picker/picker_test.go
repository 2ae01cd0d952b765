package picker_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/picker"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

const node = "node-a"

var (
	podCIDR  = netip.MustParsePrefix("10.244.0.0/16")
	nodeIP   = netip.MustParseAddr("172.18.0.2")
	pod      = netip.MustParseAddr("10.244.9.9")
	outside  = netip.MustParseAddr("198.51.100.20")
	stranger = netip.MustParseAddr("192.0.2.99")
)

func lbService(name string, mutate ...func(*v1.Service)) *v1.Service {
	all := append([]func(*v1.Service){func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalIPs = []string{"192.0.2.7"}
		s.Spec.HealthCheckNodePort = 30999
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.7"}}
	}}, mutate...)
	return servicemaptest.Service("ns", name, "10.96.0.40", []v1.ServicePort{servicemaptest.Port("p", 80, v1.ProtocolTCP)}, all...)
}

func slice(svc *v1.Service, eps ...servicemaptest.Endpoint) *discoveryv1.EndpointSlice {
	return servicemaptest.Slice(svc.Namespace, svc.Name, svc.Name+"-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("p", 8080, v1.ProtocolTCP)}, eps)
}

var (
	etpLocal = func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }
	itpLocal = func(s *v1.Service) {
		s.Spec.InternalTrafficPolicy = servicemaptest.Ptr(v1.ServiceInternalTrafficPolicyLocal)
	}
	ranges = func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24"} }
	sticky = func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: servicemaptest.Ptr[int32](60)}}
	}
)

func snapshotOf(t testing.TB, objs ...any) (*servicemap.Tracker, *servicemap.Snapshot) {
	t.Helper()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	for _, o := range objs {
		switch o := o.(type) {
		case *v1.Service:
			tr.OnServiceAdd(o)
		case *discoveryv1.EndpointSlice:
			tr.OnEndpointSliceAdd(o)
		}
	}
	return tr, tr.Snapshot()
}

func portName(svc *v1.Service) servicemap.ServicePortName {
	return servicemap.ServicePortName{Namespace: svc.Namespace, Name: svc.Name, Port: "p", Protocol: v1.ProtocolTCP}
}

// outcome is what 60 picks of one request reach: the sorted set of
// endpoint addresses, or the verdict.
func outcome(t *testing.T, p *picker.Picker, name servicemap.ServicePortName, req picker.Request) string {
	t.Helper()
	seen := map[string]bool{}
	for range 60 {
		res, err := p.Pick(name, req)
		if err != nil {
			t.Fatalf("Pick(%v): %v", name, err)
		}
		if res.Verdict != backends.Forward {
			return res.Verdict.String()
		}
		seen[res.Endpoint.Addr.Addr().String()] = true
		res.Done()
	}
	var out []string
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// TestPickFollowsPortPlan checks that, for every client kind and frontend,
// the endpoints a picker reaches (under each policy) are exactly those of
// the port's plan, which the kernel backends program, and the verdicts
// are the same.
func TestPickFollowsPortPlan(t *testing.T) {
	local, remote := servicemaptest.Ready("10.244.0.5", node), servicemaptest.Ready("10.244.1.5", "node-b")
	cases := []struct {
		name string
		svc  *v1.Service
		eps  []servicemaptest.Endpoint
	}{
		{"cluster policies", lbService("a"), []servicemaptest.Endpoint{local, remote}},
		{"etp Local", lbService("b", etpLocal), []servicemaptest.Endpoint{local, remote}},
		{"etp Local, remote only", lbService("c", etpLocal), []servicemaptest.Endpoint{remote}},
		{"itp Local", lbService("d", itpLocal), []servicemaptest.Endpoint{local, remote}},
		{"itp Local, remote only", lbService("e", itpLocal), []servicemaptest.Endpoint{remote}},
		{"no endpoints", lbService("f"), nil},
		{"terminating fallback", lbService("g"), []servicemaptest.Endpoint{servicemaptest.Terminating("10.244.0.5", node), servicemaptest.NotReady("10.244.1.5", "node-b")}},
		{"source ranges", lbService("h", ranges), []servicemaptest.Endpoint{local, remote}},
		{"affinity", lbService("i", sticky), []servicemaptest.Endpoint{local, remote}},
	}
	frontends := []backends.Frontend{backends.FrontendClusterIP, backends.FrontendNodePort, backends.FrontendExternalIP, backends.FrontendLoadBalancerIP}
	for _, tc := range cases {
		for _, policy := range []picker.Policy{picker.RoundRobin, picker.Random, picker.LeastRequest, picker.Maglev} {
			t.Run(tc.name+"/"+policy.String(), func(t *testing.T) {
				objs := []any{tc.svc}
				if tc.eps != nil {
					objs = append(objs, slice(tc.svc, tc.eps...))
				}
				_, snap := snapshotOf(t, objs...)
				p := picker.New(snap, picker.Options{Policy: policy, PodCIDRs: []netip.Prefix{podCIDR}, NodeIPs: []netip.Addr{nodeIP}})
				plan := backends.Plan(snap.Ports()[0])
				for _, client := range []netip.Addr{pod, nodeIP, outside, stranger} {
					for _, f := range frontends {
						d := plan.Decide(backends.Connection{Frontend: f, From: source(client), PodsKnown: true, Addr: client})
						want := d.Verdict.String()
						if d.Verdict == backends.Forward {
							var addrs []string
							for _, ep := range d.Endpoints {
								addrs = append(addrs, ep.Addr.Addr().String())
							}
							want = strings.Join(addrs, ",")
							if tc.svc.Spec.SessionAffinity == v1.ServiceAffinityClientIP {
								// A sticky client reaches one of them, always the same.
								got := outcome(t, p, portName(tc.svc), picker.Request{Client: client, Frontend: f})
								if strings.Contains(got, ",") || !slices.Contains(strings.Split(want, ","), got) {
									t.Errorf("client %v to %v: sticky picks reach %q, want one of %q", client, f, got, want)
								}
								continue
							}
						}
						var key uint64
						if policy == picker.Maglev {
							key = 0 // vary below
						}
						got := outcomeVaried(t, p, portName(tc.svc), picker.Request{Client: client, Frontend: f, Key: key}, policy == picker.Maglev)
						if got != want {
							t.Errorf("client %v to %v: picks reach %q, want %q (the port plan's)", client, f, got, want)
						}
					}
				}
			})
		}
	}
}

// outcomeVaried is outcome, with a new Maglev key for every pick when vary
// is set (one key always reaches one endpoint).
func outcomeVaried(t *testing.T, p *picker.Picker, name servicemap.ServicePortName, req picker.Request, vary bool) string {
	if !vary {
		return outcome(t, p, name, req)
	}
	seen := map[string]bool{}
	for k := range uint64(200) {
		req.Key = k*0x9e3779b97f4a7c15 + 1
		res, err := p.Pick(name, req)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != backends.Forward {
			return res.Verdict.String()
		}
		seen[res.Endpoint.Addr.Addr().String()] = true
	}
	var out []string
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func source(a netip.Addr) backends.Source {
	switch {
	case a == nodeIP:
		return backends.FromNode
	case podCIDR.Contains(a):
		return backends.FromPod
	}
	return backends.FromOutside
}

func threeEndpoints(svc *v1.Service) *discoveryv1.EndpointSlice {
	return slice(svc, servicemaptest.Ready("10.244.0.1", node), servicemaptest.Ready("10.244.0.2", node), servicemaptest.Ready("10.244.0.3", "node-b"))
}

func TestRoundRobinIsExact(t *testing.T) {
	svc := lbService("rr")
	_, snap := snapshotOf(t, svc, threeEndpoints(svc))
	p := picker.New(snap, picker.Options{})
	got := map[string]int{}
	for range 300 {
		res, _ := p.Pick(portName(svc), picker.Request{Client: pod})
		got[res.Addr().String()]++
	}
	// One goroutine sees a strict rotation; allow one restart of it (a
	// garbage collection may drop the per-processor cursor), or many under
	// the race detector (see raceEnabled): then only an even spread.
	lo, hi := 98, 102
	if raceEnabled {
		lo, hi = 60, 140
	}
	for a, n := range got {
		if n < lo || n > hi {
			t.Errorf("300 round-robin picks: %s got %d, want 100 (%v)", a, n, got)
		}
	}
	if len(got) != 3 {
		t.Errorf("300 round-robin picks reached %v, want 3 endpoints", got)
	}
}

func TestLeastRequestAvoidsBusyEndpoints(t *testing.T) {
	svc := lbService("lr")
	tr, snap := snapshotOf(t, svc, threeEndpoints(svc))
	p := picker.New(snap, picker.Options{Policy: picker.LeastRequest})
	// Hold 50 requests on whichever endpoints they land on, then 300 more
	// short ones: the least busy endpoint must get the most of those.
	var held []picker.Result
	for range 50 {
		res, _ := p.Pick(portName(svc), picker.Request{})
		held = append(held, res)
	}
	busy := map[string]int{}
	for _, r := range held {
		busy[r.Addr().String()]++
	}
	// Drain one endpoint's requests completely: it becomes the idlest.
	var idle string
	for a := range busy {
		idle = a
		break
	}
	for _, r := range held {
		if r.Addr().String() == idle {
			r.Done()
		}
	}
	got := map[string]int{}
	for range 30 {
		res, _ := p.Pick(portName(svc), picker.Request{})
		got[res.Addr().String()]++ // held: no Done
	}
	for a, n := range got {
		if a != idle && n > got[idle] {
			t.Errorf("after draining %s, least-request sent %d to busy %s and %d to the idle one (%v)", idle, n, a, got[idle], got)
		}
	}

	// In-flight counts survive an update that keeps the endpoints: hold 90
	// more picks so the three carry about 40 each, add an idle endpoint,
	// and hold 90 more. With the counts kept, the newcomer catches up and
	// takes about half of those; had they been reset, it would take a
	// quarter.
	for range 90 {
		p.Pick(portName(svc), picker.Request{})
	}
	tr.OnEndpointSliceUpdate(nil, slice(svc, servicemaptest.Ready("10.244.0.1", node), servicemaptest.Ready("10.244.0.2", node),
		servicemaptest.Ready("10.244.0.3", "node-b"), servicemaptest.Ready("10.244.0.4", node)))
	p.Update(tr.Snapshot())
	added := map[string]int{}
	for range 90 {
		res, _ := p.Pick(portName(svc), picker.Request{})
		added[res.Addr().String()]++
	}
	if added["10.244.0.4:8080"] < 35 {
		t.Errorf("after adding an idle endpoint to busy ones, it got %d of 90 picks (%v), want about 45: counts lost in the update?", added["10.244.0.4:8080"], added)
	}
}

// TestMaglevDisruption: a key keeps its endpoint, and when one of n
// endpoints leaves, only the keys it held (about 1/n) move.
func TestMaglevDisruption(t *testing.T) {
	const n, keys = 10, 20000
	svc := lbService("mg")
	var eps []servicemaptest.Endpoint
	for i := range n {
		eps = append(eps, servicemaptest.Ready(fmt.Sprintf("10.244.0.%d", i+1), node))
	}
	tr, snap := snapshotOf(t, svc, slice(svc, eps...))
	p := picker.New(snap, picker.Options{Policy: picker.Maglev})
	before := make([]netip.AddrPort, keys)
	share := map[netip.AddrPort]int{}
	for k := range keys {
		res, _ := p.Pick(portName(svc), picker.Request{Key: uint64(k)*0x9e3779b97f4a7c15 + 7})
		before[k] = res.Addr()
		share[res.Addr()]++
	}
	for a, c := range share {
		if c < keys/n*7/10 || c > keys/n*13/10 {
			t.Errorf("endpoint %v holds %d of %d keys; want within 30%% of %d", a, c, keys, keys/n)
		}
	}
	gone := eps[3]
	tr.OnEndpointSliceUpdate(nil, slice(svc, append(slices.Clone(eps[:3]), eps[4:]...)...))
	p.Update(tr.Snapshot())
	moved, fromGone := 0, 0
	for k := range keys {
		res, _ := p.Pick(portName(svc), picker.Request{Key: uint64(k)*0x9e3779b97f4a7c15 + 7})
		if res.Addr() != before[k] {
			moved++
			if before[k].Addr().String() == gone.IP {
				fromGone++
			}
		}
	}
	frac := float64(moved) / keys
	t.Logf("removing 1 of %d endpoints moved %.2f%% of keys (%d of them from the removed one)", n, 100*frac, fromGone)
	if frac > 1.5/float64(n) {
		t.Errorf("removing 1 of %d endpoints moved %.1f%% of keys; want about %.1f%% (at most 1.5/n)", n, 100*frac, 100/float64(n))
	}
	if fromGone != share[netip.AddrPortFrom(netip.MustParseAddr(gone.IP), 8080)] {
		t.Errorf("%d keys of the removed endpoint moved, want all %d", fromGone, share[netip.AddrPortFrom(netip.MustParseAddr(gone.IP), 8080)])
	}
}

func TestAffinity(t *testing.T) {
	svc := lbService("aff", sticky)
	tr, snap := snapshotOf(t, svc, threeEndpoints(svc))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := picker.New(snap, picker.Options{Now: func() time.Time { return now }})
	first, _ := p.Pick(portName(svc), picker.Request{Client: pod})
	for range 20 {
		res, _ := p.Pick(portName(svc), picker.Request{Client: pod})
		if res.Addr() != first.Addr() {
			t.Fatalf("sticky client moved from %v to %v", first.Addr(), res.Addr())
		}
		now = now.Add(30 * time.Second) // within the 60 s timeout of the last use
	}
	// Another client is not stuck to the same one by that.
	others := map[netip.AddrPort]bool{}
	for i := range 30 {
		res, _ := p.Pick(portName(svc), picker.Request{Client: netip.AddrFrom4([4]byte{10, 244, 5, byte(i)})})
		others[res.Addr()] = true
	}
	if len(others) < 2 {
		t.Errorf("30 clients all reached %v; affinity should be per client", others)
	}
	// The endpoint leaves: the client is re-picked among the others, and
	// stays on its new one.
	var rest []servicemaptest.Endpoint
	for _, e := range []servicemaptest.Endpoint{servicemaptest.Ready("10.244.0.1", node), servicemaptest.Ready("10.244.0.2", node), servicemaptest.Ready("10.244.0.3", "node-b")} {
		if e.IP != first.Addr().Addr().String() {
			rest = append(rest, e)
		}
	}
	tr.OnEndpointSliceUpdate(nil, slice(svc, rest...))
	p.Update(tr.Snapshot())
	second, _ := p.Pick(portName(svc), picker.Request{Client: pod})
	if second.Addr() == first.Addr() {
		t.Fatalf("client still sent to removed endpoint %v", first.Addr())
	}
	for range 10 {
		if res, _ := p.Pick(portName(svc), picker.Request{Client: pod}); res.Addr() != second.Addr() {
			t.Fatalf("re-picked client moved again, %v then %v", second.Addr(), res.Addr())
		}
	}
	// After the timeout without use, the client may go anywhere.
	now = now.Add(61 * time.Second)
	seen := map[netip.AddrPort]bool{}
	for range 30 {
		res, _ := p.Pick(portName(svc), picker.Request{Client: pod})
		seen[res.Addr()] = true
		now = now.Add(61 * time.Second)
	}
	if len(seen) < 2 {
		t.Errorf("with every pick after the timeout the client still reached only %v", seen)
	}
}

func TestFrontendsAndNodePorts(t *testing.T) {
	svc := lbService("fe")
	_, snap := snapshotOf(t, svc, threeEndpoints(svc))
	p := picker.New(snap, picker.Options{})
	for _, a := range []string{"10.96.0.40:80", "192.0.2.7:80", "203.0.113.7:80"} {
		res, err := p.PickFrontend(v1.ProtocolTCP, netip.MustParseAddrPort(a), picker.Request{Client: outside})
		if err != nil || res.Verdict != backends.Forward {
			t.Errorf("PickFrontend(%s) = %+v, %v", a, res.Verdict, err)
		}
	}
	if res, err := p.PickNodePort(v1.ProtocolTCP, 30080, picker.Request{Client: outside}); err != nil || res.Verdict != backends.Forward {
		t.Errorf("PickNodePort(30080) = %v, %v", res.Verdict, err)
	}
	for _, miss := range []func() error{
		func() error {
			_, err := p.PickFrontend(v1.ProtocolUDP, netip.MustParseAddrPort("10.96.0.40:80"), picker.Request{})
			return err
		},
		func() error {
			_, err := p.PickFrontend(v1.ProtocolTCP, netip.MustParseAddrPort("10.96.0.40:81"), picker.Request{})
			return err
		},
		func() error { _, err := p.PickNodePort(v1.ProtocolTCP, 30081, picker.Request{}); return err },
		func() error {
			_, err := p.Pick(servicemap.ServicePortName{Namespace: "ns", Name: "nope", Protocol: v1.ProtocolTCP}, picker.Request{})
			return err
		},
	} {
		if err := miss(); err != picker.ErrNotFound {
			t.Errorf("lookup of a missing frontend: %v, want ErrNotFound", err)
		}
	}
}

func TestUpdateFollowsSnapshots(t *testing.T) {
	svc := lbService("up")
	tr, snap := snapshotOf(t, svc, threeEndpoints(svc))
	p := picker.New(snap, picker.Options{})
	tr.OnServiceDelete(svc)
	p.Update(tr.Snapshot())
	if _, err := p.Pick(portName(svc), picker.Request{}); err != picker.ErrNotFound {
		t.Errorf("after the service was deleted, Pick: %v, want ErrNotFound", err)
	}
	if _, err := p.PickFrontend(v1.ProtocolTCP, netip.MustParseAddrPort("192.0.2.7:80"), picker.Request{}); err != picker.ErrNotFound {
		t.Errorf("after the service was deleted, PickFrontend: %v, want ErrNotFound", err)
	}
	tr.OnServiceAdd(svc)
	p.Update(tr.Snapshot())
	if res, err := p.PickNodePort(v1.ProtocolTCP, 30080, picker.Request{}); err != nil || res.Verdict != backends.Forward {
		t.Errorf("after the service came back, PickNodePort: %v, %v", res.Verdict, err)
	}
	if p.Snapshot() != tr.Snapshot() {
		t.Errorf("Snapshot() is not the last one given to Update")
	}
}

// TestConcurrentPicksAndUpdates runs picks on several goroutines while
// another updates the snapshot (go test -race checks the sharing).
func TestConcurrentPicksAndUpdates(t *testing.T) {
	svc := lbService("cc", sticky)
	tr, snap := snapshotOf(t, svc, threeEndpoints(svc))
	for _, policy := range []picker.Policy{picker.RoundRobin, picker.Random, picker.LeastRequest, picker.Maglev} {
		p := picker.New(snap, picker.Options{Policy: policy})
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					res, err := p.Pick(portName(svc), picker.Request{Client: netip.AddrFrom4([4]byte{10, 244, byte(g), byte(i)}), Key: uint64(i)})
					if err != nil {
						t.Error(err)
						return
					}
					res.Done()
				}
			}()
		}
		for i := range 200 {
			eps := []servicemaptest.Endpoint{servicemaptest.Ready("10.244.0.1", node)}
			if i%2 == 0 {
				eps = append(eps, servicemaptest.Ready("10.244.0.2", node))
			}
			tr.OnEndpointSliceUpdate(nil, slice(svc, eps...))
			p.Update(tr.Snapshot())
		}
		close(stop)
		wg.Wait()
	}
}

func TestPickAllocatesNothing(t *testing.T) {
	svc := lbService("alloc")
	stickySvc := lbService("alloc-sticky", sticky)
	stickySvc.Spec.ClusterIP, stickySvc.Spec.ClusterIPs = "10.96.0.41", []string{"10.96.0.41"}
	stickySvc.Spec.ExternalIPs, stickySvc.Spec.Ports[0].NodePort = nil, 30081
	stickySvc.Status.LoadBalancer.Ingress = nil
	_, snap := snapshotOf(t, svc, threeEndpoints(svc), stickySvc, threeEndpoints(stickySvc))
	for _, policy := range []picker.Policy{picker.RoundRobin, picker.Random, picker.LeastRequest, picker.Maglev} {
		p := picker.New(snap, picker.Options{Policy: policy, PodCIDRs: []netip.Prefix{podCIDR}})
		for _, name := range []servicemap.ServicePortName{portName(svc), portName(stickySvc)} {
			req := picker.Request{Client: pod, Frontend: backends.FrontendLoadBalancerIP, Key: 42}
			if n := testing.AllocsPerRun(200, func() {
				res, _ := p.Pick(name, req)
				res.Done()
			}); n != 0 {
				t.Errorf("%v Pick(%v) allocates %v times, want 0", policy, name, n)
			}
		}
		if n := testing.AllocsPerRun(200, func() {
			p.PickFrontend(v1.ProtocolTCP, netip.MustParseAddrPort("10.96.0.40:80"), picker.Request{Client: pod})
		}); n != 0 {
			t.Errorf("%v PickFrontend allocates %v times", policy, n)
		}
	}
}

func TestRunFollowsTracker(t *testing.T) {
	svc := lbService("run")
	tr, _ := snapshotOf(t, svc)
	p := picker.New(nil, picker.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, tr) }()
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait("the service without endpoints", func() bool {
		res, err := p.Pick(portName(svc), picker.Request{})
		return err == nil && res.Verdict == backends.Reject
	})
	tr.OnEndpointSliceAdd(threeEndpoints(svc))
	wait("the endpoints", func() bool {
		res, err := p.Pick(portName(svc), picker.Request{})
		return err == nil && res.Verdict == backends.Forward
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v after cancel, want nil", err)
	}
}
