package userspace_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/userspace"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// listenIn opens a TCP listener in the named network namespace.
func listenIn(t testing.TB, ns, addr string) net.Listener {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// echo serves line echo on ln: every line comes back prefixed with name.
func echo(ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%s %s", name, line)
			}
		}()
	}
}

// dialIn connects from the named namespace.
func dialIn(t testing.TB, ns string, dst netip.AddrPort) net.Conn {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, _ := netns.Get()
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	c, err := net.DialTimeout("tcp", dst.String(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial %v: %v", dst, err)
	}
	return c
}

// ask sends one line and returns who echoed it.
func ask(t *testing.T, c net.Conn, r *bufio.Reader, line string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	reply, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	name, rest, _ := strings.Cut(strings.TrimSpace(reply), " ")
	if rest != line {
		t.Fatalf("echo of %q = %q", line, reply)
	}
	return name
}

// startProxy starts a userspace proxy in n's node, synced to tr's snapshot,
// and returns what syncs it again; Cleanup runs when the test ends.
func startProxy(t *testing.T, n *backendtest.Network, tr *servicemap.Tracker) (sync func()) {
	t.Helper()
	var b *userspace.Backend
	ctx := context.Background()
	if err := n.InNode(func() error {
		var err error
		if b, err = userspace.New(userspace.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}, userspace.Options{}); err != nil {
			return err
		}
		return b.Sync(ctx, nil, tr.Snapshot())
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.InNode(func() error { return b.Cleanup(ctx) }) })
	return func() {
		t.Helper()
		if err := n.InNode(func() error { return b.Sync(ctx, nil, tr.Snapshot()) }); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTerminatingEndpointKeepsConnections: an endpoint that turns
// terminating gets no new connection, while one established before keeps
// working until it closes; a removed endpoint's established connection
// keeps working too (as conntrack keeps it for the kernel backends).
func TestTerminatingEndpointKeepsConnections(t *testing.T) {
	backendtest.Require(t, "ip", "nft")
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 2})
	bes := n.Pods()
	for _, be := range bes {
		go echo(listenIn(t, be.NS, netip.AddrPortFrom(be.IP, 9000).String()), be.Name)
	}
	const node = "node"
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	svc := servicemaptest.Service("t", "echo", "10.96.0.30", []v1.ServicePort{servicemaptest.Port("echo", 9000, v1.ProtocolTCP)})
	ports := []discoveryv1.EndpointPort{servicemaptest.SlicePort("echo", 9000, v1.ProtocolTCP)}
	tr.OnServiceAdd(svc)
	tr.OnEndpointSliceAdd(servicemaptest.Slice("t", "echo", "echo-1", ports,
		[]servicemaptest.Endpoint{servicemaptest.Ready(bes[0].IP.String(), node)}))

	sync := startProxy(t, n, tr)

	vip := netip.MustParseAddrPort("10.96.0.30:9000")
	held := dialIn(t, n.ClientNS(), vip)
	defer held.Close()
	hr := bufio.NewReader(held)
	if got := ask(t, held, hr, "one"); got != bes[0].Name {
		t.Fatalf("held connection answered by %q, want %q", got, bes[0].Name)
	}

	// b0 terminates, b1 is ready: new connections go to b1, the held one
	// stays with b0.
	tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("t", "echo", "echo-1", ports,
		[]servicemaptest.Endpoint{servicemaptest.Terminating(bes[0].IP.String(), node), servicemaptest.Ready(bes[1].IP.String(), node)}))
	sync()
	for i := range 10 {
		c := dialIn(t, n.ClientNS(), vip)
		if got := ask(t, c, bufio.NewReader(c), fmt.Sprint("new-", i)); got != bes[1].Name {
			t.Errorf("new connection %d after %s turned terminating answered by %q, want %q", i, bes[0].Name, got, bes[1].Name)
		}
		c.Close()
	}
	if got := ask(t, held, hr, "two"); got != bes[0].Name {
		t.Errorf("held connection after its endpoint turned terminating answered by %q, want %q", got, bes[0].Name)
	}

	// b0 is gone from the slice: the established connection still runs.
	tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("t", "echo", "echo-1", ports,
		[]servicemaptest.Endpoint{servicemaptest.Ready(bes[1].IP.String(), node)}))
	sync()
	if got := ask(t, held, hr, "three"); got != bes[0].Name {
		t.Errorf("held connection after its endpoint was removed answered by %q, want %q", got, bes[0].Name)
	}
}

// TestUDPFlowKeepsServingEndpoint: a UDP flow stays with its endpoint while
// the endpoint serves, terminating or not, as conntrack keeps it for the
// kernel backends (kube-proxy's cleanup keeps serving endpoints); new flows
// go to the ready endpoint; once the endpoint is gone the flow moves on.
func TestUDPFlowKeepsServingEndpoint(t *testing.T) {
	backendtest.Require(t, "ip", "nft")
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 2})
	n.Serve(t, 9053)
	bes := n.Pods()
	const node = "node"
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	tr.OnServiceAdd(servicemaptest.Service("t", "dns", "10.96.0.31", []v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)}))
	ports := []discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 9053, v1.ProtocolUDP)}
	setSlice := func(eps ...servicemaptest.Endpoint) {
		tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("t", "dns", "dns-1", ports, eps))
	}
	setSlice(servicemaptest.Ready(bes[0].IP.String(), node))

	sync := startProxy(t, n, tr)

	vip := netip.MustParseAddrPort("10.96.0.31:53")
	stream, err := n.StartUDPStream(40053, vip, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.WaitFor(0, bes[0].Name, 2*time.Second) {
		t.Fatalf("%v: no answer from %s", stream, bes[0].Name)
	}

	// b0 terminates but serves, b1 is ready: the flow stays with b0, a new
	// one goes to b1.
	setSlice(servicemaptest.Terminating(bes[0].IP.String(), node), servicemaptest.Ready(bes[1].IP.String(), node))
	sync()
	mark := stream.Mark()
	fresh, err := n.StartUDPStream(40054, vip, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if !fresh.WaitFor(0, bes[1].Name, 2*time.Second) {
		t.Errorf("%v: a new flow got no answer from the ready %s", fresh, bes[1].Name)
	}
	time.Sleep(300 * time.Millisecond)
	if got := stream.Since(mark); got[bes[0].Name] == 0 || got[bes[1].Name] != 0 {
		t.Errorf("flow after its endpoint turned terminating (still serving): answers %v, want %s only", got, bes[0].Name)
	}

	// b0 is gone: the flow moves to b1.
	setSlice(servicemaptest.Ready(bes[1].IP.String(), node))
	sync()
	if mark := stream.Mark(); !stream.WaitFor(mark, bes[1].Name, 2*time.Second) {
		t.Errorf("%v: the flow did not move to %s after its endpoint was removed: %v", stream, bes[1].Name, stream.Since(mark))
	}
}
