//go:build linux

package ipvs_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	mobyipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/backends/ipvs/ipvsfake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// Where the kernel tests run
//
// The tests that need IPVS (TestIPVSConformance, TestIPVSLeastConnection,
// TestIPVSSourceHashing, TestIPVSHairpin) run where the kernel has it:
//
//   - Inside the VM that TestIPVSInVM boots (LBKIT_IN_VM=1): they must run,
//     and fail when IPVS is missing.
//   - On a host whose kernel has IPVS: they run like any kernel test (root
//     and tools, else skip, or fail under LBKIT_E2E=1).
//   - On a host without IPVS (this project's CI machines): they skip, also
//     under LBKIT_E2E=1. That is not a quiet gap: TestIPVSInVM runs them in
//     the VM, and fails under LBKIT_E2E=1 when it cannot.
//
// TestNetfilterHalfOnKernel needs no IPVS and runs on the host.

// inVM reports whether this process is the test binary inside the VM.
func inVM() bool { return os.Getenv("LBKIT_IN_VM") == "1" }

// requireIPVS skips or fails the test by the rules above.
func requireIPVS(t *testing.T) {
	t.Helper()
	_, err := netlink.GenlFamilyGet("IPVS")
	switch {
	case err == nil:
		backendtest.Require(t, "ip", "nft")
	case inVM():
		t.Fatalf("inside the VM the kernel must have IPVS: %v (are the ip_vs modules loaded?)", err)
	default:
		t.Skipf("the kernel has no IPVS (%v); these tests run in a VM instead: TestIPVSInVM, backends/ipvs/vmtest/run.sh", err)
	}
}

// conformanceSpec describes the backend as the suite's variant asks
// (cluster CIDRs or none, NodePortAddresses or none, MasqueradeAll); node
// ports go on the addresses the node's links have, read at every Sync.
func conformanceSpec(n *backendtest.Network) ipvs.Spec {
	return ipvs.Spec{
		ClusterCIDRs:      n.ClusterCIDRs(),
		MasqueradeAll:     n.MasqueradeAll(),
		NodePortAddresses: n.NodePortAddresses(),
	}
}

// newBackend is a Factory for backendtest: it runs in the node namespace.
func newBackend(spec func(*backendtest.Network) ipvs.Spec) backendtest.Factory {
	return func(t *testing.T, n *backendtest.Network) backends.Interface {
		b, err := ipvs.New(spec(n), ipvs.Options{})
		if err != nil {
			t.Fatalf("ipvs.New: %v", err)
		}
		// Not closed: the suite calls Cleanup after every t.Cleanup this
		// Factory could register. The sockets go with the process.
		return b
	}
}

// TestIPVSConformance runs the backendtest suite against IPVS, every
// variant: IPv4 and IPv6, with and without NodePortAddresses and cluster
// CIDRs.
func TestIPVSConformance(t *testing.T) {
	requireIPVS(t)
	start := time.Now()
	backendtest.Run(t, newBackend(conformanceSpec), backendtest.SuiteOptions{Leftovers: leftovers})
	t.Logf("conformance suite took %v", time.Since(start).Round(time.Millisecond))
}

// leftovers lists what lbkit's IPVS backend may have left in the calling
// thread's namespace: any virtual server, the dummy link, the table.
func leftovers() (string, error) {
	var out []string
	h, err := mobyipvs.New("")
	if err != nil {
		return "", err
	}
	defer h.Close()
	svcs, err := h.GetServices()
	if err != nil {
		return "", err
	}
	for _, s := range svcs {
		out = append(out, fmt.Sprintf("virtual server %v:%d proto %d", s.Address, s.Port, s.Protocol))
	}
	if _, err := netlink.LinkByName(ipvs.DefaultInterface); err == nil {
		out = append(out, "link "+ipvs.DefaultInterface)
	}
	tables, err := exec.Command("nft", "list", "tables").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("nft list tables: %v: %s", err, tables)
	}
	if strings.Contains(string(tables), " "+ipvs.DefaultTable+"\n") {
		out = append(out, "nftables table "+ipvs.DefaultTable)
	}
	return strings.Join(out, "\n"), nil
}

// world for kernel tests: a Network, a Tracker and the backend.
type kernelWorld struct {
	t    *testing.T
	n    *backendtest.Network
	b    *ipvs.Backend
	tr   *servicemap.Tracker
	prev *servicemap.Snapshot
}

func newKernelWorld(t *testing.T, backends int, spec ipvs.Spec) *kernelWorld {
	t.Helper()
	requireIPVS(t)
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: backends})
	w := &kernelWorld{t: t, n: n, tr: servicemap.NewTracker(servicemap.Options{NodeName: "node"})}
	spec.ClusterCIDRs = []netip.Prefix{n.ClusterCIDR()}
	err := n.InNode(func() error {
		var err error
		w.b, err = ipvs.New(spec, ipvs.Options{})
		return err
	})
	if err != nil {
		t.Fatalf("ipvs.New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.InNode(func() error { return w.b.Cleanup(context.Background()) }); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
		w.b.Close()
	})
	return w
}

func (w *kernelWorld) sync(objs ...any) {
	w.t.Helper()
	for _, o := range objs {
		switch o := o.(type) {
		case *v1.Service:
			w.tr.OnServiceUpdate(nil, o)
		default:
			w.tr.OnEndpointSliceUpdate(nil, o.(*discoverySlice))
		}
	}
	next := w.tr.Snapshot()
	if err := w.n.InNode(func() error { return w.b.Sync(context.Background(), w.prev, next) }); err != nil {
		w.t.Fatalf("Sync: %v", err)
	}
	w.prev = next
}

type discoverySlice = discoveryv1.EndpointSlice

func holdPorts(port int32) []discoveryv1.EndpointPort {
	return []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", port, v1.ProtocolTCP)}
}

// inNamespace runs f on a thread in the named namespace (see backendtest).
func inNamespace(name string, f func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer func() {
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return f()
}

// holdServer serves port in every backend of n: it writes the backend's
// name and keeps the connection open until the client closes it.
func holdServer(t *testing.T, n *backendtest.Network, port uint16) {
	t.Helper()
	for _, b := range n.Pods() {
		var ln net.Listener
		err := inNamespace(b.NS, func() error {
			var err error
			ln, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
			return err
		})
		if err != nil {
			t.Fatalf("listen in %s: %v", b.NS, err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					c.Write([]byte(b.Name + "\n"))
					buf := make([]byte, 64)
					for {
						if _, err := c.Read(buf); err != nil {
							return
						}
					}
				}()
			}
		}()
	}
}

// dialHold connects from the client and returns the answering backend and
// the open connection.
func dialHold(t *testing.T, n *backendtest.Network, dst netip.AddrPort) (string, net.Conn) {
	t.Helper()
	var c net.Conn
	err := inNamespace(n.ClientNS(), func() error {
		var err error
		c, err = net.DialTimeout("tcp", dst.String(), 2*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("dial %v: %v", dst, err)
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	name, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		t.Fatalf("read from %v: %v", dst, err)
	}
	c.SetDeadline(time.Time{})
	return strings.TrimSpace(name), c
}

// TestIPVSLeastConnection: with the lc scheduler, new connections go to the
// idle backend while the other holds long-lived ones. (Round robin would
// alternate.)
func TestIPVSLeastConnection(t *testing.T) {
	w := newKernelWorld(t, 2, ipvs.Spec{Scheduler: "lc"})
	const port = 9090
	holdServer(t, w.n, port)
	vip := netip.MustParseAddrPort("10.96.0.40:80")
	be := w.n.Pods()
	svc := servicemaptest.Service("ipvs", "lc", vip.Addr().String(), tcp80)
	slice := func(eps ...servicemaptest.Endpoint) *discoverySlice {
		return servicemaptest.Slice("ipvs", "lc", "lc-1", holdPorts(port), eps)
	}
	w.sync(svc, slice(servicemaptest.Ready(be[0].IP.String(), "node")))
	for range 2 {
		name, c := dialHold(t, w.n, vip)
		defer c.Close()
		if name != be[0].Name {
			t.Fatalf("with one endpoint, a connection reached %s", name)
		}
	}

	w.sync(slice(servicemaptest.Ready(be[0].IP.String(), "node"), servicemaptest.Ready(be[1].IP.String(), "node")))
	got := map[string]int{}
	for range 10 {
		name, c := dialHold(t, w.n, vip)
		c.Close()
		got[name]++
	}
	if got[be[1].Name] != 10 {
		t.Errorf("lc with 2 connections held on %s: 10 new connections went %v, want all to %s",
			be[0].Name, got, be[1].Name)
	}
}

// TestIPVSSourceHashing: with the sh scheduler every connection of a
// client reaches one backend.
func TestIPVSSourceHashing(t *testing.T) {
	w := newKernelWorld(t, 3, ipvs.Spec{Scheduler: "rr", SchedulerFor: func(n servicemap.ServicePortName) string {
		if n.Name == "sticky" {
			return "sh"
		}
		return ""
	}})
	w.n.Serve(t, 8080)
	be := w.n.Pods()
	var ready []servicemaptest.Endpoint
	for _, b := range be {
		ready = append(ready, servicemaptest.Ready(b.IP.String(), "node"))
	}
	sticky, spread := netip.MustParseAddrPort("10.96.0.41:80"), netip.MustParseAddrPort("10.96.0.42:80")
	w.sync(servicemaptest.Service("ipvs", "sticky", sticky.Addr().String(), tcp80),
		servicemaptest.Slice("ipvs", "sticky", "sticky-1", tcp8080, ready),
		servicemaptest.Service("ipvs", "spread", spread.Addr().String(), tcp80),
		servicemaptest.Slice("ipvs", "spread", "spread-1", tcp8080, ready))
	for _, src := range []netip.Addr{w.n.ClientIP(), w.n.ClientIP2()} {
		got := tally(t, w.n, src, sticky, 20)
		if len(got) != 1 {
			t.Errorf("sh: 20 connections from %v went %v, want all to one backend", src, got)
		}
	}
	if got := tally(t, w.n, w.n.ClientIP(), spread, 30); len(got) != 3 {
		t.Errorf("rr (the default) next to sh: 30 connections went %v, want all 3 backends", got)
	}
}

// TestIPVSHairpin: a pod reaches itself and other pods through a cluster
// IP, and the node reaches it too (locally generated traffic).
func TestIPVSHairpin(t *testing.T) {
	w := newKernelWorld(t, 2, ipvs.Spec{})
	w.n.Serve(t, 8080)
	be := w.n.Pods()
	self := netip.MustParseAddrPort("10.96.0.43:80")
	w.sync(servicemaptest.Service("ipvs", "self", self.Addr().String(), tcp80),
		servicemaptest.Slice("ipvs", "self", "self-1", tcp8080, eps(servicemaptest.Ready(be[0].IP.String(), "node"))))
	for _, from := range []string{be[0].NS, be[1].NS, w.n.NodeNS()} {
		name, err := w.n.DialTCPFrom(from, netip.Addr{}, self, 2*time.Second)
		if err != nil || name != be[0].Name {
			t.Errorf("from %s to %v: %q, %v; want %s", from, self, name, err, be[0].Name)
		}
	}
}

func tally(t *testing.T, n *backendtest.Network, src netip.Addr, dst netip.AddrPort, count int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range count {
		name, err := n.DialTCP(context.Background(), src, dst, 2*time.Second)
		if err != nil {
			t.Fatalf("connection to %v from %v: %v (so far %v)", dst, src, err, got)
		}
		got[name]++
	}
	return got
}

// TestNewDetectsMissingIPVS: on a kernel without IPVS, where moby/ipvs
// would report success for everything, New says ErrNotSupported.
func TestNewDetectsMissingIPVS(t *testing.T) {
	_, famErr := netlink.GenlFamilyGet("IPVS")
	b, err := ipvs.New(ipvs.Spec{}, ipvs.Options{NFT: nil})
	switch {
	case famErr == nil && err == nil:
		b.Close()
	case famErr == nil && errors.Is(err, backends.ErrNotSupported) && strings.Contains(err.Error(), "nft"):
		t.Skipf("IPVS present, nft missing: %v", err)
	case famErr == nil:
		if os.Geteuid() != 0 {
			t.Skipf("IPVS present but not usable unprivileged: %v", err)
		}
		t.Errorf("kernel has IPVS, New: %v", err)
	case !errors.Is(err, backends.ErrNotSupported):
		t.Errorf("kernel without IPVS: New = %v, want an error wrapping ErrNotSupported", err)
	}
}

// TestNetfilterHalfOnKernel loads the netfilter half into a real kernel's
// nftables (in a new network namespace, IPVS and links faked): nft accepts
// the table, incremental syncs add and delete elements (intervals too), a
// restarted backend reads the ownership record back, and Cleanup deletes
// the table. It needs root and nft, not IPVS.
func TestNetfilterHalfOnKernel(t *testing.T) {
	backendtest.Require(t, "nft")
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread stays in the new namespace and dies with the goroutine.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare: %v", err)
			return
		}
		netfilterHalf(t)
	}()
	<-done
}

func netfilterHalf(t *testing.T) {
	fake, host := ipvsfake.NewIPVS(), ipvsfake.NewHost(netip.MustParseAddr(nodeIP))
	spec := ipvs.Spec{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}
	opts := ipvs.Options{IPVS: fake, Host: host}
	b, err := ipvs.New(spec, opts)
	if err != nil {
		t.Errorf("New: %v", err)
		return
	}
	tr := servicemap.NewTracker(servicemap.Options{NodeName: thisNode})
	lb := servicemaptest.Service("shop", "front", "10.96.0.12", tcp80, servicemaptest.LoadBalancer("203.0.113.7"),
		nodePort(30012), servicemaptest.SourceRanges("198.51.100.0/24", "192.168.0.0/16"))
	slice := servicemaptest.Slice("shop", "front", "front-1", tcp8080, eps(servicemaptest.Ready("10.244.1.7", thisNode)))
	tr.OnServiceAdd(lb)
	tr.OnEndpointSliceAdd(slice)
	s1 := tr.Snapshot()
	ctx := context.Background()
	if err := b.Sync(ctx, nil, s1); err != nil {
		t.Errorf("full sync: %v", err)
		return
	}
	ruleset := nftList(t, "list", "table", "ip", ipvs.DefaultTable)
	for _, want := range []string{"203.0.113.7 . tcp . 80 . 198.51.100.0/24", nodeIP + " . tcp . 30012", "masquerade fully-random"} {
		if !strings.Contains(ruleset, want) {
			t.Errorf("table lacks %q:\n%s", want, ruleset)
		}
	}
	// Ranges change (interval elements deleted, the node-address range
	// with the /32 of the LB IP goes), then the service goes while the
	// backend is restarted.
	tr.OnServiceUpdate(nil, servicemaptest.Service("shop", "front", "10.96.0.12", tcp80, servicemaptest.LoadBalancer("203.0.113.7"),
		nodePort(30012), servicemaptest.SourceRanges("198.51.100.0/25")))
	s2 := tr.Snapshot()
	if err := b.Sync(ctx, s1, s2); err != nil {
		t.Errorf("incremental sync: %v", err)
		return
	}
	ruleset = nftList(t, "list", "set", "ip", ipvs.DefaultTable, "firewall-allow")
	if strings.Contains(ruleset, "192.168.0.0/16") || strings.Contains(ruleset, "203.0.113.7 . tcp . 80 . 203.0.113.7") ||
		!strings.Contains(ruleset, "198.51.100.0/25") {
		t.Errorf("firewall-allow after the change:\n%s", ruleset)
	}
	b2, err := ipvs.New(spec, opts)
	if err != nil {
		t.Errorf("New: %v", err)
		return
	}
	tr.OnServiceDelete(lb)
	if err := b2.Sync(ctx, nil, tr.Snapshot()); err != nil {
		t.Errorf("full sync after restart: %v", err)
		return
	}
	if len(fake.Keys()) != 0 {
		t.Errorf("after the service went, IPVS still has:\n%s", fake.Dump())
	}
	if set := nftList(t, "list", "set", "ip", ipvs.DefaultTable, "node-address-servers"); strings.Contains(set, "30012") {
		t.Errorf("record kept a deleted virtual server:\n%s", set)
	}
	if err := b2.Cleanup(ctx); err != nil {
		t.Errorf("Cleanup: %v", err)
	}
	if tables := nftList(t, "list", "tables"); strings.Contains(tables, ipvs.DefaultTable) {
		t.Errorf("table left after Cleanup: %s", tables)
	}
}

func nftList(t *testing.T, args ...string) string {
	out, err := exec.Command("nft", args...).CombinedOutput()
	if err != nil {
		t.Errorf("nft %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
