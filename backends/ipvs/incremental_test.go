//go:build linux

package ipvs_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// One endpoint of one service in 2,000 turning not ready, and back, costs
// an incremental sync the IPVS calls for that one real server, a listing
// of that virtual server's real servers (no listing of every virtual
// server or of the dummy link's addresses), and an nftables transaction
// with that endpoint's hairpin element only.
func TestIncrementalSyncCost(t *testing.T) {
	w := newWorld(t, ipvs.Spec{})
	// knftables' fake checks each element against every other: too slow
	// for this size. Record the transactions instead.
	nft := &recordingNFT{Fake: w.nft}
	w.opts.NFT = nft
	w.restart()
	svcs, slices := servicemaptest.Cluster(2000, 10)
	for i := range svcs {
		w.apply(svcs[i], slices[i])
	}
	w.sync()
	w.calls()
	w.host.TakeCalls()
	w.ipvs.TakeListings()
	w.host.TakeListings()

	target := slices[1000]
	flipped := target.DeepCopy()
	flipped.Endpoints[0].Conditions.Ready = servicemaptest.Ptr(false)
	vs := svcs[1000].Spec.ClusterIP + ":80/TCP"
	ep := target.Endpoints[0].Addresses[0]
	for _, step := range []struct {
		slice *discoveryv1.EndpointSlice
		calls []string
		nft   string
	}{
		{flipped, []string{"delete " + vs + " -> " + ep + ":8080"}, "delete element ip lbkit-ipvs hairpin { " + ep + " . " + ep + " }\n"},
		{target, []string{"add " + vs + " -> " + ep + ":8080 w1"}, "add element ip lbkit-ipvs hairpin { " + ep + " . " + ep + " }\n"},
	} {
		w.apply(step.slice)
		nft.last = nil
		w.sync()
		if diff := cmp.Diff(step.calls, w.calls()); diff != "" {
			t.Errorf("IPVS calls (-want +got):\n%s", diff)
		}
		if got := w.host.TakeCalls(); !cmp.Equal(got, []string{"ensure-dummy " + ipvs.DefaultInterface}) {
			t.Errorf("host calls %q, want only ensure-dummy", got)
		}
		if v, r := w.ipvs.TakeListings(); v != 0 || r != 1 {
			t.Errorf("listed all virtual servers %d times and real servers %d times, want 0 and 1", v, r)
		}
		if n := w.host.TakeListings(); n != 0 {
			t.Errorf("listed the dummy link's addresses %d times, want 0", n)
		}
		if tx := nft.last; tx == nil || tx.String() != step.nft {
			t.Errorf("nftables transaction %v, want %q", tx, step.nft)
		}
	}

	// Nothing changed: no call at all, and no transaction.
	nft.last = nil
	w.sync()
	if calls := w.calls(); len(calls) != 0 || nft.last != nil {
		t.Errorf("sync without changes: calls %q, transaction %v", calls, nft.last)
	}
}

// A sequence of incremental syncs of random changes (services added,
// changed and removed; endpoints shared by services; cluster IPs, external
// IPs and node ports shared by several service ports; load balancers with
// source ranges; Local policies; affinity; schedulers) leaves the fake
// kernel and the nftables table as a full sync of the same snapshot into
// an empty one does; and a full sync after them changes nothing.
func TestIncrementalMatchesFull(t *testing.T) {
	for seed := range uint64(10) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 16))
			sched := map[string]string{}
			spec := ipvs.Spec{
				ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
				SchedulerFor: func(n servicemap.ServicePortName) string { return sched[n.ServiceName()] },
			}
			w := newWorld(t, spec)
			g := &gen{r: r, svcs: map[string]*v1.Service{}, slices: map[string]*discoveryv1.EndpointSlice{}}
			for range 8 {
				g.step(w, sched)
			}
			quietSync(t, w, nil)
			for i := range 150 {
				for range 1 + r.IntN(3) {
					g.step(w, sched)
				}
				snap := quietSync(t, w, w.prev)
				fresh := newWorld(t, spec)
				quietSync(t, fresh, nil, snap)
				if diff := cmp.Diff(fresh.ipvs.Dump(), w.ipvs.Dump()); diff != "" {
					t.Fatalf("step %d: IPVS after incremental syncs (-full +incremental):\n%s", i, diff)
				}
				if got, want := bound(w.host, ipvs.DefaultInterface), bound(fresh.host, ipvs.DefaultInterface); got != want {
					t.Fatalf("step %d: dummy link %q, a full sync binds %q", i, got, want)
				}
				if diff := cmp.Diff(lines(fresh.nft.Dump()), lines(w.nft.Dump())); diff != "" {
					t.Fatalf("step %d: nftables after incremental syncs (-full +incremental):\n%s", i, diff)
				}
				if i%10 == 9 {
					w.calls()
					quietSync(t, w, nil)
					if calls := w.calls(); len(calls) != 0 {
						t.Fatalf("step %d: a full sync after incremental ones made calls %q", i, calls)
					}
				}
			}
		})
	}
}

// recordingNFT is knftables' fake that keeps the last transaction Run
// gets and applies none: its table stays empty.
type recordingNFT struct {
	*knftables.Fake
	last *knftables.Transaction
}

func (r *recordingNFT) Run(_ context.Context, tx *knftables.Transaction) error {
	r.last = tx
	return nil
}

// quietSync syncs w to snap (the Tracker's snapshot when not given) from
// prev, ignoring the Tracker's warnings (the random services share
// addresses on purpose).
func quietSync(t *testing.T, w *world, prev *servicemap.Snapshot, snap ...*servicemap.Snapshot) *servicemap.Snapshot {
	t.Helper()
	w.tr.Warnings()
	next := w.tr.Snapshot()
	if len(snap) > 0 {
		next = snap[0]
	}
	if err := w.b.Sync(context.Background(), prev, next); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	w.prev = next
	return next
}

// lines returns s's lines, sorted: the fake table lists elements in the
// order they were added.
func lines(s string) []string { return slices.Sorted(slices.Values(strings.Split(s, "\n"))) }

// gen makes random changes to a small cluster where much is shared.
type gen struct {
	r      *rand.Rand
	svcs   map[string]*v1.Service
	slices map[string]*discoveryv1.EndpointSlice
}

func (g *gen) pick(from ...string) string { return from[g.r.IntN(len(from))] }

func (g *gen) some(from ...string) []string {
	var out []string
	for _, s := range from {
		if g.r.IntN(3) == 0 {
			out = append(out, s)
		}
	}
	return out
}

var genPorts = []struct {
	svc   v1.ServicePort
	slice discoveryv1.EndpointPort
}{
	{servicemaptest.Port("http", 80, v1.ProtocolTCP), servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)},
	{servicemaptest.Port("dns", 53, v1.ProtocolUDP), servicemaptest.SlicePort("dns", 5353, v1.ProtocolUDP)},
	{servicemaptest.Port("alt", 80, v1.ProtocolUDP), servicemaptest.SlicePort("alt", 8080, v1.ProtocolUDP)},
	// On an external IP that is the node's, the same virtual server as a
	// node port of another service: the first by name has it.
	{servicemaptest.Port("high", 30000, v1.ProtocolTCP), servicemaptest.SlicePort("high", 8080, v1.ProtocolTCP)},
}

// step makes one change: a service added, changed or removed, its slice
// changed or removed, or its scheduler changed.
func (g *gen) step(w *world, sched map[string]string) {
	name := g.pick("s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7")
	ns := g.pick("a", "b")
	id := ns + "/" + name
	switch g.r.IntN(10) {
	case 0:
		if s := g.svcs[id]; s != nil {
			w.remove(s)
			delete(g.svcs, id)
		}
	case 1:
		if s := g.slices[id]; s != nil {
			w.remove(s)
			delete(g.slices, id)
		}
	case 2:
		sched[id] = g.pick("", "rr", "lc", "sh")
	case 3, 4, 5:
		s := g.service(ns, name)
		g.svcs[id] = s
		w.apply(s)
	default:
		s := g.slice(ns, name)
		g.slices[id] = s
		w.apply(s)
	}
}

func (g *gen) service(ns, name string) *v1.Service {
	var ports []v1.ServicePort
	for _, p := range genPorts {
		if len(ports) == 0 || g.r.IntN(2) == 0 {
			ports = append(ports, p.svc)
		}
	}
	var mut []func(*v1.Service)
	if g.r.IntN(2) == 0 {
		np := int32(30000 + g.r.IntN(3))
		mut = append(mut, func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeNodePort
			for i := range s.Spec.Ports {
				s.Spec.Ports[i].NodePort = np + int32(10*i)
			}
		})
	}
	if ips := g.some("192.0.2.1", "192.0.2.2", nodeIP); len(ips) > 0 {
		mut = append(mut, servicemaptest.ExternalIPs(ips...))
	}
	if g.r.IntN(3) == 0 {
		mut = append(mut, servicemaptest.LoadBalancer(g.some("203.0.113.1", "203.0.113.2", "192.0.2.1")...))
		if g.r.IntN(2) == 0 {
			mut = append(mut, servicemaptest.SourceRanges(g.some("198.51.100.0/24", "192.168.0.0/16", "10.0.0.0/8")...))
		}
	}
	if g.r.IntN(3) == 0 {
		mut = append(mut, servicemaptest.ExternalLocal(0))
	}
	if g.r.IntN(4) == 0 {
		mut = append(mut, servicemaptest.InternalLocal)
	}
	if g.r.IntN(4) == 0 {
		mut = append(mut, servicemaptest.ClientIP(int32(100+g.r.IntN(3))))
	}
	return servicemaptest.Service(ns, name, g.pick("10.96.0.1", "10.96.0.2", "10.96.0.3", "10.96.0.4", "10.96.0.5"), ports, mut...)
}

func (g *gen) slice(ns, name string) *discoveryv1.EndpointSlice {
	var eps []servicemaptest.Endpoint
	for _, ip := range g.some("10.244.1.1", "10.244.1.2", "10.244.2.1", "10.244.2.2", "10.244.3.1") {
		node := g.pick(thisNode, "node-b")
		switch g.r.IntN(4) {
		case 0:
			eps = append(eps, servicemaptest.NotReady(ip, node))
		case 1:
			eps = append(eps, servicemaptest.Terminating(ip, node))
		default:
			eps = append(eps, servicemaptest.Ready(ip, node))
		}
	}
	var ports []discoveryv1.EndpointPort
	for _, p := range genPorts {
		ports = append(ports, p.slice)
	}
	return servicemaptest.Slice(ns, name, name+"-1", ports, eps)
}

// An incremental sync that finds the node's addresses changed is a full
// one: node ports move to the new address.
func TestIncrementalNodeAddressChange(t *testing.T) {
	w := newWorld(t, ipvs.Spec{})
	w.apply(servicemaptest.Service("default", "web", "10.96.0.10", tcp80, nodePort(30080)),
		servicemaptest.Slice("default", "web", "web-1", tcp8080, eps(servicemaptest.Ready("10.244.1.5", thisNode))))
	w.sync()
	if err := errors.Join(w.host.EnsureDummy("eth1"), w.host.AddLinkAddr("eth1", netip.MustParseAddr("10.0.0.7"))); err != nil {
		t.Fatal(err)
	}
	w.calls()
	w.sync()
	want := []string{"add 10.0.0.7:30080/TCP", "add 10.0.0.7:30080/TCP -> 10.244.1.5:8080 w1"}
	if diff := cmp.Diff(want, w.calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if v, _ := w.ipvs.TakeListings(); v == 0 {
		t.Errorf("the sync did not list the virtual servers: not a full sync")
	}
}

// A service port that an incremental sync adds takes over another
// program's virtual server on the node address and port it now uses, as a
// full sync does.
func TestIncrementalTakesOver(t *testing.T) {
	w := newWorld(t, ipvs.Spec{})
	w.sync()
	foreign := ipvs.VirtualServer{Addr: netip.MustParseAddr(nodeIP), Port: 30080, Protocol: v1.ProtocolTCP, Scheduler: "wlc"}
	if err := errors.Join(w.ipvs.AddVirtualServer(foreign),
		w.ipvs.AddRealServer(foreign, ipvs.RealServer{Addr: netip.MustParseAddrPort("192.0.2.100:80"), Weight: 3})); err != nil {
		t.Fatal(err)
	}
	w.apply(servicemaptest.Service("default", "web", "10.96.0.10", tcp80, nodePort(30080)),
		servicemaptest.Slice("default", "web", "web-1", tcp8080, eps(servicemaptest.Ready("10.244.1.5", thisNode))))
	w.calls()
	w.sync()
	want := "-A -t 10.96.0.10:80 -s rr\n-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1\n" +
		"-A -t " + nodeIP + ":30080 -s rr\n-a -t " + nodeIP + ":30080 -r 10.244.1.5:8080 -m -w 1\n"
	if diff := cmp.Diff(want, w.ipvs.Dump()); diff != "" {
		t.Errorf("IPVS (-want +got):\n%s", diff)
	}
	if got := w.elements("node-address-servers"); !cmp.Equal(got, []string{nodeIP + " . tcp . 30080"}) {
		t.Errorf("node-address-servers = %q", got)
	}
}
