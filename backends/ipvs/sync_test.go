//go:build linux

package ipvs_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/backends/ipvs/ipvsfake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// mixed is a snapshot with one of most things: three endpoints, a node
// port with externalTrafficPolicy Local, a load balancer with source
// ranges and affinity, UDP, and a service without endpoints.
func (w *world) applyMixed() {
	web := servicemaptest.Service("default", "web", "10.96.0.10", tcp80)
	local := servicemaptest.Service("default", "local", "10.96.0.11", tcp80, nodePort(30011), servicemaptest.ExternalLocal(0))
	lb := servicemaptest.Service("shop", "front", "10.96.0.12", tcp80, servicemaptest.LoadBalancer("203.0.113.7"),
		nodePort(30012), servicemaptest.ClientIP(600), servicemaptest.SourceRanges("198.51.100.0/24", "192.168.0.0/16"))
	dns := servicemaptest.Service("kube-system", "dns", "10.96.0.13", udp53, servicemaptest.ExternalIPs("192.0.2.53"))
	empty := servicemaptest.Service("default", "empty", "10.96.0.14", tcp80, nodePort(30014))
	w.apply(web, local, lb, dns, empty,
		servicemaptest.Slice("default", "web", "web-1", tcp8080, eps(
			servicemaptest.Ready("10.244.1.5", thisNode), servicemaptest.Ready("10.244.2.5", "node-b"), servicemaptest.Ready("10.244.3.5", "node-c"))),
		servicemaptest.Slice("default", "local", "local-1", tcp8080, eps(
			servicemaptest.Ready("10.244.1.6", thisNode), servicemaptest.Ready("10.244.2.6", "node-b"))),
		servicemaptest.Slice("shop", "front", "front-1", tcp8080, eps(
			servicemaptest.Ready("10.244.1.7", thisNode), servicemaptest.Ready("10.244.2.7", "node-b"))),
		servicemaptest.Slice("kube-system", "dns", "dns-1", udp5353, eps(
			servicemaptest.Ready("10.244.1.8", thisNode), servicemaptest.Ready("10.244.2.8", "node-b"))),
		servicemaptest.Slice("default", "empty", "empty-1", tcp8080, eps(servicemaptest.NotReady("10.244.1.9", thisNode))),
	)
}

// The kernel ends up with what Render says, the virtual addresses on the
// dummy link (node addresses not), and the netfilter half as in its golden
// file.
func TestSyncProgramsWhatRenderShows(t *testing.T) {
	w := newWorld(t, ipvs.Spec{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}})
	w.applyMixed()
	snap := w.sync()

	rspec := w.spec
	rspec.NodeIPs = []netip.Addr{netip.MustParseAddr(nodeIP)}
	if diff := cmp.Diff(ipvs.Render(snap, rspec), w.ipvs.Dump()); diff != "" {
		t.Errorf("kernel differs from Render (-render +kernel):\n%s", diff)
	}
	wantBound := "10.96.0.10 10.96.0.11 10.96.0.12 10.96.0.13 10.96.0.14 192.0.2.53 203.0.113.7"
	if got := bound(w.host, ipvs.DefaultInterface); got != wantBound {
		t.Errorf("dummy link addresses = %q, want %q", got, wantBound)
	}
	for name, want := range map[string]string{
		"net/ipv4/vs/conntrack": "1", "net/ipv4/vs/expire_nodest_conn": "1",
		"net/ipv4/vs/expire_quiescent_template": "1",
		"net/ipv4/conf/all/arp_ignore":          "1", "net/ipv4/conf/all/arp_announce": "2",
	} {
		if got, _ := w.host.Sysctl(name); got != want {
			t.Errorf("sysctl %s = %q, want %q", name, got, want)
		}
	}
	checkGolden(t, "netfilter-mixed", w.nft.Dump())
}

// After the first sync, a sync changes exactly what changed, whether it is
// incremental or full (a full sync compares with the kernel, not with
// memory).
func TestSyncTouchesOnlyChanges(t *testing.T) {
	w := newWorld(t, ipvs.Spec{})
	w.applyMixed()
	w.sync()
	w.calls()

	w.sync()
	if calls := w.calls(); len(calls) != 0 {
		t.Errorf("incremental sync of an unchanged snapshot: %q, want no calls", calls)
	}
	w.fullSync()
	if calls := w.calls(); len(calls) != 0 {
		t.Errorf("full sync of an unchanged snapshot: %q, want no calls", calls)
	}

	// One more endpoint for web, and the dns service goes.
	w.apply(servicemaptest.Slice("default", "web", "web-1", tcp8080, eps(
		servicemaptest.Ready("10.244.1.5", thisNode), servicemaptest.Ready("10.244.2.5", "node-b"),
		servicemaptest.Ready("10.244.3.5", "node-c"), servicemaptest.Ready("10.244.4.5", "node-d"))))
	w.remove(servicemaptest.Service("kube-system", "dns", "10.96.0.13", udp53))
	for _, full := range []bool{false, true} {
		if full {
			// Undo in the kernel, then let a full sync find it out.
			w.ipvs.DeleteRealServer(ipvs.VirtualServer{Addr: netip.MustParseAddr("10.96.0.10"), Port: 80, Protocol: v1.ProtocolTCP},
				ipvs.RealServer{Addr: netip.MustParseAddrPort("10.244.4.5:8080")})
			w.calls()
			w.fullSync()
		} else {
			w.sync()
		}
		want := []string{"add 10.96.0.10:80/TCP -> 10.244.4.5:8080 w1"}
		if !full {
			want = append(want, "delete 192.0.2.53:53/UDP", "delete 10.96.0.13:53/UDP")
		}
		if diff := cmp.Diff(sorted(want), w.calls()); diff != "" {
			t.Errorf("full=%v: calls (-want +got):\n%s", full, diff)
		}
	}
	if got := bound(w.host, ipvs.DefaultInterface); strings.Contains(got, "10.96.0.13") || strings.Contains(got, "192.0.2.53") {
		t.Errorf("addresses of the deleted service still bound: %s", got)
	}
	if got := w.elements("no-endpoints"); len(got) != 2 {
		t.Errorf("no-endpoints = %q, want the two addresses of default/empty", got)
	}
}

// Virtual servers lbkit cannot show it owns survive Sync and Cleanup; those
// it owns go, node-port ones too after a restart, thanks to the record in
// the nftables table.
func TestOwnership(t *testing.T) {
	w := newWorld(t, ipvs.Spec{})
	foreign := []ipvs.VirtualServer{
		{Addr: netip.MustParseAddr("192.0.2.1"), Port: 80, Protocol: v1.ProtocolTCP, Scheduler: "wlc"},
		// On the node address, on a port lbkit never names.
		{Addr: netip.MustParseAddr(nodeIP), Port: 31999, Protocol: v1.ProtocolTCP, Scheduler: "rr"},
	}
	for _, vs := range foreign {
		if err := w.ipvs.AddVirtualServer(vs); err != nil {
			t.Fatal(err)
		}
		w.ipvs.AddRealServer(vs, ipvs.RealServer{Addr: netip.MustParseAddrPort("192.0.2.100:80"), Weight: 3})
	}
	foreignDump := w.ipvs.Dump()
	web := servicemaptest.Service("default", "web", "10.96.0.10", tcp80, nodePort(30080))
	slice := servicemaptest.Slice("default", "web", "web-1", tcp8080, eps(servicemaptest.Ready("10.244.1.5", thisNode)))
	w.apply(web, slice)
	w.sync()
	if err := w.ipvs.DeleteVirtualServer(ipvs.VirtualServer{Addr: netip.MustParseAddr("10.96.0.10"), Port: 80, Protocol: v1.ProtocolTCP}); err != nil {
		t.Fatal(err)
	}
	// A leftover of lbkit's on its dummy address, another port.
	stale := ipvs.VirtualServer{Addr: netip.MustParseAddr("10.96.0.10"), Port: 8443, Protocol: v1.ProtocolTCP, Scheduler: "rr"}
	w.ipvs.AddVirtualServer(stale)
	w.fullSync()
	if _, ok := w.ipvs.VirtualServer(stale.Key()); ok {
		t.Errorf("%v is on lbkit's dummy link but survived a sync", stale.Key())
	}
	if _, ok := w.ipvs.VirtualServer(key("10.96.0.10:80/TCP")); !ok {
		t.Errorf("deleted cluster-IP virtual server not recreated")
	}
	if got := w.elements("node-address-servers"); !cmp.Equal(got, []string{nodeIP + " . tcp . 30080"}) {
		t.Errorf("node-address-servers = %q", got)
	}

	// The service goes while lbkit is down; the new process still knows
	// the node-port virtual server is its own.
	w.restart()
	w.remove(web, slice)
	w.fullSync()
	if diff := cmp.Diff(foreignDump, w.ipvs.Dump()); diff != "" {
		t.Errorf("after the service was deleted, IPVS (-want +got):\n%s", diff)
	}
	if got := w.elements("node-address-servers"); len(got) != 0 {
		t.Errorf("node-address-servers = %q after its virtual server went", got)
	}

	w.apply(web, slice)
	w.sync()
	w.cleanup()
	if diff := cmp.Diff(foreignDump, w.ipvs.Dump()); diff != "" {
		t.Errorf("after Cleanup, IPVS (-want +got):\n%s", diff)
	}
	if w.host.HasLink(ipvs.DefaultInterface) {
		t.Errorf("dummy link left after Cleanup")
	}
	if dump := w.nft.Dump(); dump != "" {
		t.Errorf("nftables left after Cleanup:\n%s", dump)
	}
	w.cleanup() // twice is fine
}

// An external IP that is one of the node's addresses is not bound to the
// dummy link (which would make every virtual server on the node address
// lbkit's), but recorded like a node port.
func TestExternalIPOnNodeAddress(t *testing.T) {
	w := newWorld(t, ipvs.Spec{})
	foreign := ipvs.VirtualServer{Addr: netip.MustParseAddr(nodeIP), Port: 443, Protocol: v1.ProtocolTCP, Scheduler: "rr"}
	w.ipvs.AddVirtualServer(foreign)
	svc := servicemaptest.Service("default", "web", "10.96.0.10", tcp80, servicemaptest.ExternalIPs(nodeIP))
	w.apply(svc, servicemaptest.Slice("default", "web", "web-1", tcp8080, eps(servicemaptest.Ready("10.244.1.5", thisNode))))
	w.sync()
	if got := bound(w.host, ipvs.DefaultInterface); got != "10.96.0.10" {
		t.Errorf("dummy link addresses = %q, want only the cluster IP", got)
	}
	if got := w.elements("node-address-servers"); !cmp.Equal(got, []string{nodeIP + " . tcp . 80"}) {
		t.Errorf("node-address-servers = %q", got)
	}
	w.restart()
	w.remove(svc)
	w.fullSync()
	if diff := cmp.Diff(map[ipvs.Key]bool{foreign.Key(): true}, keysOf(w.ipvs)); diff != "" {
		t.Errorf("virtual servers after the service went (-want +got):\n%s", diff)
	}
}

func keysOf(f *ipvsfake.IPVS) map[ipvs.Key]bool {
	out := map[ipvs.Key]bool{}
	for _, k := range f.Keys() {
		out[k] = true
	}
	return out
}

// A TCP real server that leaves while it has connections is kept at weight
// 0 until they end, then removed; without connections, or for UDP, it goes
// at once; one that comes back gets its weight again.
func TestDraining(t *testing.T) {
	w := newWorld(t, ipvs.Spec{})
	web := servicemaptest.Service("default", "web", "10.96.0.10", tcp80)
	dns := servicemaptest.Service("default", "dns", "10.96.0.53", udp53)
	a, b, c := "10.244.1.5", "10.244.2.5", "10.244.3.5"
	webSlice := func(e ...servicemaptest.Endpoint) {
		w.apply(servicemaptest.Slice("default", "web", "web-1", tcp8080, e))
	}
	dnsSlice := func(e ...servicemaptest.Endpoint) {
		w.apply(servicemaptest.Slice("default", "dns", "dns-1", udp5353, e))
	}
	w.apply(web, dns)
	webSlice(servicemaptest.Ready(a, thisNode), servicemaptest.Ready(b, thisNode), servicemaptest.Ready(c, thisNode))
	dnsSlice(servicemaptest.Ready(a, thisNode), servicemaptest.Ready(b, thisNode))
	w.sync()
	webKey, dnsKey := key("10.96.0.10:80/TCP"), key("10.96.0.53:53/UDP")
	mustSetConns(t, w.ipvs, webKey, netip.MustParseAddrPort(b+":8080"), 1, 2)
	mustSetConns(t, w.ipvs, dnsKey, netip.MustParseAddrPort(b+":5353"), 0, 1)
	w.calls()

	// b turns terminating (no ready fallback needed: a is ready), c goes.
	webSlice(servicemaptest.Ready(a, thisNode), servicemaptest.Terminating(b, thisNode))
	dnsSlice(servicemaptest.Ready(a, thisNode))
	w.sync()
	want := []string{
		"update 10.96.0.10:80/TCP -> 10.244.2.5:8080 w0",
		"delete 10.96.0.10:80/TCP -> 10.244.3.5:8080",
		"delete 10.96.0.53:53/UDP -> 10.244.2.5:5353",
	}
	if diff := cmp.Diff(sorted(want), w.calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	wantDump := "-A -t 10.96.0.10:80 -s rr\n" +
		"-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1\n" +
		"-a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 0\n" +
		"-A -u 10.96.0.53:53 -s rr\n" +
		"-a -u 10.96.0.53:53 -r 10.244.1.5:5353 -m -w 1\n"
	if diff := cmp.Diff(wantDump, w.ipvs.Dump()); diff != "" {
		t.Errorf("IPVS (-want +got):\n%s", diff)
	}

	// Still connected: an unchanged snapshot looks again and does nothing.
	w.syncFrom(w.prev)
	if calls := w.calls(); len(calls) != 0 {
		t.Errorf("draining, still connected: calls %q, want none", calls)
	}
	// Drained: the next sync, even of the same snapshot, removes it.
	mustSetConns(t, w.ipvs, webKey, netip.MustParseAddrPort(b+":8080"), 0, 0)
	w.syncFrom(w.prev)
	if diff := cmp.Diff([]string{"delete 10.96.0.10:80/TCP -> 10.244.2.5:8080"}, w.calls()); diff != "" {
		t.Errorf("drained: calls (-want +got):\n%s", diff)
	}

	// Draining, then back: weight 1 again.
	mustSetConns(t, w.ipvs, webKey, netip.MustParseAddrPort(a+":8080"), 5, 0)
	webSlice(servicemaptest.NotReady(a, thisNode), servicemaptest.Ready(b, thisNode))
	w.sync()
	webSlice(servicemaptest.Ready(a, thisNode), servicemaptest.Ready(b, thisNode))
	w.sync()
	if r, _ := w.ipvs.RealServer(webKey, netip.MustParseAddrPort(a+":8080")); r.Weight != 1 {
		t.Errorf("endpoint back after draining has weight %d, want 1", r.Weight)
	}
}

// The scheduler comes from Spec.Scheduler, or per service port from
// SchedulerFor; unknown names fall back; a change updates the virtual
// server in place.
func TestSchedulerOverride(t *testing.T) {
	choice := map[string]string{"default/web": "lc", "default/other": "bogus"}
	w := newWorld(t, ipvs.Spec{
		Scheduler:    "wrr",
		SchedulerFor: func(n servicemap.ServicePortName) string { return choice[n.ServiceName()] },
	})
	w.apply(servicemaptest.Service("default", "web", "10.96.0.10", tcp80),
		servicemaptest.Service("default", "other", "10.96.0.11", tcp80),
		servicemaptest.Service("default", "plain", "10.96.0.12", tcp80))
	w.sync()
	for k, want := range map[string]string{"10.96.0.10:80/TCP": "lc", "10.96.0.11:80/TCP": "wrr", "10.96.0.12:80/TCP": "wrr"} {
		if got := w.vs(k).Scheduler; got != want {
			t.Errorf("%s scheduler %q, want %q", k, got, want)
		}
	}
	w.calls()
	choice["default/web"] = "sh"
	w.sync()
	if diff := cmp.Diff([]string{"update 10.96.0.10:80/TCP"}, w.calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if got := w.vs("10.96.0.10:80/TCP").Scheduler; got != "sh" {
		t.Errorf("scheduler after the change %q, want sh", got)
	}

	if _, err := ipvs.New(ipvs.Spec{Scheduler: "fastest"}, ipvs.Options{IPVS: w.ipvs, Host: w.host, NFT: w.nft}); err == nil {
		t.Errorf("New accepted the scheduler %q", "fastest")
	}
}

// ClientIP affinity is persistence with the service's timeout, on every
// address of the service; turning it off updates the virtual servers.
func TestPersistence(t *testing.T) {
	w := newWorld(t, ipvs.Spec{})
	slice := servicemaptest.Slice("default", "web", "web-1", tcp8080, eps(servicemaptest.Ready("10.244.1.5", thisNode)))
	w.apply(servicemaptest.Service("default", "web", "10.96.0.10", tcp80, servicemaptest.ClientIP(600), nodePort(30080)), slice)
	w.sync()
	for _, k := range []string{"10.96.0.10:80/TCP", nodeIP + ":30080/TCP"} {
		if vs := w.vs(k); !vs.Persistent || vs.Timeout != 600 {
			t.Errorf("%s: persistent %v timeout %d, want true 600", k, vs.Persistent, vs.Timeout)
		}
	}
	w.calls()
	w.apply(servicemaptest.Service("default", "web", "10.96.0.10", tcp80, nodePort(30080)))
	w.sync()
	if diff := cmp.Diff([]string{"update 10.96.0.10:80/TCP", "update " + nodeIP + ":30080/TCP"}, w.calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if vs := w.vs("10.96.0.10:80/TCP"); vs.Persistent {
		t.Errorf("still persistent after affinity was turned off")
	}
}

// A failure is reported as ErrApply, the rest is still applied, and the
// next sync (with prev given) is a full one that repairs the failure.
func TestSyncFailureThenFullSync(t *testing.T) {
	w := newWorld(t, ipvs.Spec{})
	w.apply(servicemaptest.Service("default", "a", "10.96.0.10", tcp80), servicemaptest.Service("default", "b", "10.96.0.11", tcp80))
	w.ipvs.FailNext("add 10.96.0.10:80/TCP", nil)
	snap := w.tr.Snapshot()
	err := w.b.Sync(context.Background(), nil, snap)
	if !errors.Is(err, backends.ErrApply) {
		t.Fatalf("Sync with a failing add = %v, want ErrApply", err)
	}
	if _, ok := w.ipvs.VirtualServer(key("10.96.0.11:80/TCP")); !ok {
		t.Errorf("the other virtual server was not added")
	}
	w.syncFrom(snap)
	if _, ok := w.ipvs.VirtualServer(key("10.96.0.10:80/TCP")); !ok {
		t.Errorf("the sync after a failure did not repair it")
	}
}

// NodeIPs pins the node-port addresses; NodePortAddresses filters them,
// and loopback and link-local addresses never get node ports.
func TestNodeAddresses(t *testing.T) {
	slice := servicemaptest.Slice("default", "web", "web-1", tcp8080, eps(servicemaptest.Ready("10.244.1.5", thisNode)))
	svc := servicemaptest.Service("default", "web", "10.96.0.10", tcp80, nodePort(30080))
	for _, tc := range []struct {
		name string
		spec ipvs.Spec
		want []string
	}{
		{"discovered", ipvs.Spec{}, []string{nodeIP}},
		{"given", ipvs.Spec{NodeIPs: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("127.0.0.1")}}, []string{"10.0.0.1"}},
		{"filtered", ipvs.Spec{NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, nil},
		// Prefixes of the other family only leave this one unrestricted,
		// as in kube-proxy (a dual-stack proxy passes one list to both).
		{"other family only", ipvs.Spec{NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("fd00::/8")}}, []string{nodeIP}},
		{"both families", ipvs.Spec{NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("10.0.0.0/8")}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.spec)
			w.apply(svc, slice)
			w.sync()
			var got []string
			for _, k := range w.ipvs.Keys() {
				if k.Port == 30080 {
					got = append(got, k.Addr.String())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("node-port virtual servers on (-want +got):\n%s", diff)
			}
		})
	}
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// TestIPv6LinkLocalOnDummy: the kernel gives every IPv6 link, lbkit's dummy
// one included, a link-local address. An IPv6 sync leaves it alone: it is
// the kernel's, not a virtual address lbkit bound and no longer wants.
func TestIPv6LinkLocalOnDummy(t *testing.T) {
	fake, host := ipvsfake.NewIPVS(), ipvsfake.NewHost(netip.MustParseAddr("fd00:100::1"))
	// The kernel gave the link its address before this process started.
	if err := errors.Join(host.EnsureDummy(ipvs.DefaultInterface), host.AddLinkAddr(ipvs.DefaultInterface, netip.MustParseAddr("fe80::1"))); err != nil {
		t.Fatal(err)
	}
	b, err := ipvs.New(ipvs.Spec{}, ipvs.Options{IPVS: fake, Host: host, NFT: knftables.NewFake(knftables.IPv6Family, ipvs.DefaultTable)})
	if err != nil {
		t.Fatal(err)
	}
	tr := servicemap.NewTracker(servicemap.Options{NodeName: thisNode, IPFamily: v1.IPv6Protocol})
	tr.OnServiceAdd(servicemaptest.Service("default", "web", "fd00:96::10", tcp80))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "web", "web-1", tcp8080, eps(servicemaptest.Ready("fd00:244::5", thisNode))))
	if err := b.Sync(context.Background(), nil, tr.Snapshot()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if got, want := bound(host, ipvs.DefaultInterface), "fd00:96::10 fe80::1"; got != want {
		t.Errorf("addresses on %s: %q, want %q", ipvs.DefaultInterface, got, want)
	}
}

// Traffic from the pods and from the node to an externalTrafficPolicy=Local
// address goes to the cluster IP (kubernetes#131765): its node ports,
// external IPs and load-balancer IPs are in the short-circuit map, whose
// value follows a changed service port; a Cluster policy needs none, and
// with internalTrafficPolicy Local too the cluster IP would be no
// short-circuit (its route is the Local list), so there is none either.
func TestShortCircuit(t *testing.T) {
	w := newWorld(t, ipvs.Spec{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}})
	local := servicemaptest.Service("default", "local", "10.96.0.11", tcp80, servicemaptest.LoadBalancer("203.0.113.7"),
		servicemaptest.ExternalIPs("192.0.2.11"), nodePort(30011), servicemaptest.ExternalLocal(30100))
	both := servicemaptest.Service("default", "both", "10.96.0.12", tcp80, servicemaptest.ExternalIPs("192.0.2.12"), servicemaptest.ExternalLocal(0), servicemaptest.InternalLocal)
	cluster := servicemaptest.Service("default", "cluster", "10.96.0.13", tcp80, servicemaptest.ExternalIPs("192.0.2.13"), nodePort(30013))
	var objs []any
	for _, name := range []string{"local", "both", "cluster"} {
		objs = append(objs, servicemaptest.Slice("default", name, name+"-1", tcp8080, eps(servicemaptest.Ready("10.244.2.5", "node-b"))))
	}
	w.apply(append([]any{local, both, cluster}, objs...)...)
	w.sync()
	want := []string{
		"192.0.2.11 . tcp . 80 : 10.96.0.11 . 80",
		"192.168.0.10 . tcp . 30011 : 10.96.0.11 . 80",
		"203.0.113.7 . tcp . 80 : 10.96.0.11 . 80",
	}
	if diff := cmp.Diff(want, w.elements("short-circuit-to")); diff != "" {
		t.Errorf("short-circuit-to (-want +got):\n%s", diff)
	}
	if got := len(w.elements("short-circuit")); got != len(want) {
		t.Errorf("short-circuit has %d elements, want %d", got, len(want))
	}

	// The service port moves: the node port's value changes in an
	// incremental sync (a delete and an add in one transaction).
	moved := local.DeepCopy()
	moved.Spec.Ports[0].Port = 81
	w.apply(moved)
	w.sync()
	want = []string{
		"192.0.2.11 . tcp . 81 : 10.96.0.11 . 81",
		"192.168.0.10 . tcp . 30011 : 10.96.0.11 . 81",
		"203.0.113.7 . tcp . 81 : 10.96.0.11 . 81",
	}
	if diff := cmp.Diff(want, w.elements("short-circuit-to")); diff != "" {
		t.Errorf("short-circuit-to after the port moved (-want +got):\n%s", diff)
	}
}

// With MasqueradeAll every cluster IP is in cluster-ips, even without
// cluster CIDRs, and its mark rule tests no source; without it and
// without cluster CIDRs the set stays empty (nothing is masqueraded).
func TestSyncMasqueradeAll(t *testing.T) {
	for _, tc := range []struct {
		name          string
		spec          ipvs.Spec
		element, rule bool // 10.96.0.10 in cluster-ips; the mark rule without a source test
	}{
		{"default", ipvs.Spec{}, false, false},
		{"cluster CIDRs", ipvs.Spec{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}, true, false},
		{"masqueradeAll", ipvs.Spec{MasqueradeAll: true}, true, true},
		{"masqueradeAll and cluster CIDRs", ipvs.Spec{MasqueradeAll: true, ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.spec)
			w.applyMixed()
			w.sync()
			dump := w.nft.Dump()
			if got := strings.Contains(dump, "add element ip lbkit-ipvs cluster-ips { 10.96.0.10 . tcp . 80 }"); got != tc.element {
				t.Errorf("cluster IP in cluster-ips = %v, want %v\n%s", got, tc.element, dump)
			}
			if got := strings.Contains(dump, "@cluster-ips meta mark set"); got != tc.rule {
				t.Errorf("mark rule without a source test = %v, want %v\n%s", got, tc.rule, dump)
			}
		})
	}
}
