//go:build linux

package conntrack_test

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/conntrack"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// dnsSnapshot is a UDP service 10.96.0.10:53 with node port 30053 whose
// endpoints are the given backend addresses, port 8080, all ready.
func dnsSnapshot(t *testing.T, eps ...netip.Addr) *servicemap.Snapshot {
	t.Helper()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	tr.OnServiceAdd(servicemaptest.Service("ns", "dns", "10.96.0.10",
		[]v1.ServicePort{{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP, NodePort: 30053}},
		func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort }))
	var list []servicemaptest.Endpoint
	for _, a := range eps {
		list = append(list, servicemaptest.Ready(a.String(), "node"))
	}
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "dns", "dns-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 8080, v1.ProtocolUDP)}, list))
	return tr.Snapshot()
}

// insertedFlow is a conntrack entry the test writes with conntrack -I; its
// client source port identifies it in the listing.
type insertedFlow struct {
	proto    string
	sport    int
	origDst  netip.AddrPort
	replySrc netip.AddrPort
	stale    bool
}

func (f insertedFlow) insert(n *backendtest.Network) error {
	args := []string{"-I", "-p", f.proto, "-t", "300",
		"-s", "10.100.0.2", "--sport", strconv.Itoa(f.sport),
		"-d", f.origDst.Addr().String(), "--dport", strconv.Itoa(int(f.origDst.Port())),
		"-r", f.replySrc.Addr().String(), "--reply-port-src", strconv.Itoa(int(f.replySrc.Port())),
		"-q", "10.100.0.2", "--reply-port-dst", strconv.Itoa(f.sport)}
	if f.proto == "tcp" {
		args = append(args, "--state", "ESTABLISHED")
	}
	_, err := n.Conntrack(args...)
	return err
}

var sportRE = regexp.MustCompile(`sport=(\d+)`)

// sports lists the client source ports of the node's conntrack entries.
func sports(t *testing.T, n *backendtest.Network) []int {
	t.Helper()
	out, err := n.Conntrack("-L")
	if err != nil {
		t.Fatal(err)
	}
	var ports []int
	for _, m := range regexp.MustCompile(`(?m)^.*$`).FindAllString(out, -1) {
		if s := sportRE.FindStringSubmatch(m); s != nil {
			p, _ := strconv.Atoi(s[1])
			ports = append(ports, p)
		}
	}
	slices.Sort(ports)
	return ports
}

// TestReconcileKernel writes entries of every kind into a namespace's table,
// reconciles, and reads back what is left.
func TestReconcileKernel(t *testing.T) {
	backendtest.Require(t, "ip", "conntrack")
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 1})
	b0 := netip.MustParseAddr("10.244.1.10")
	snap := dnsSnapshot(t, b0)
	ap := netip.MustParseAddrPort
	flows := []insertedFlow{
		{"udp", 40001, ap("10.96.0.10:53"), ap("10.244.1.10:8080"), false},
		{"udp", 40002, ap("10.96.0.10:53"), ap("10.244.1.11:8080"), true},
		{"udp", 40003, ap("10.96.0.10:53"), ap("10.96.0.10:53"), true},
		{"udp", 40004, ap("10.100.0.1:30053"), ap("10.244.1.10:8080"), false},
		{"udp", 40005, ap("10.100.0.1:30053"), ap("10.244.1.12:8080"), true},
		{"udp", 40006, ap("10.100.0.1:30053"), ap("10.100.0.1:30053"), true},
		{"udp", 40007, ap("10.96.0.99:53"), ap("10.244.1.11:8080"), false},
		{"tcp", 40008, ap("10.96.0.10:53"), ap("10.244.1.11:8080"), false},
	}
	var want []int
	for _, f := range flows {
		if err := f.insert(n); err != nil {
			t.Fatal(err)
		}
		if !f.stale {
			want = append(want, f.sport)
		}
	}
	if got := sports(t, n); len(got) != len(flows) {
		t.Fatalf("inserted %d flows, table holds source ports %v", len(flows), got)
	}

	c, err := conntrack.New(conntrack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var deleted int
	if err := n.InNode(func() error {
		deleted, err = c.Reconcile(snap)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if wantDeleted := len(flows) - len(want); deleted != wantDeleted {
		t.Errorf("Reconcile deleted %d flows, want %d", deleted, wantDeleted)
	}
	if diff := cmp.Diff(want, sports(t, n)); diff != "" {
		t.Errorf("flows left (source ports, -want +got):\n%s", diff)
	}

	// Idempotent: nothing left to delete.
	if err := n.InNode(func() error {
		deleted, err = c.Reconcile(snap)
		return err
	}); err != nil || deleted != 0 {
		t.Errorf("second Reconcile = %d, %v; want 0, nil", deleted, err)
	}

	t.Run("handle aimed at the namespace", func(t *testing.T) {
		// Options.Handle fixes the namespace: this Reconcile runs on the
		// test's own thread, outside the node.
		ns, err := netns.GetFromName(n.NodeNS())
		if err != nil {
			t.Fatal(err)
		}
		defer ns.Close()
		h, err := netlink.NewHandleAt(ns, syscall.NETLINK_NETFILTER)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		stale := insertedFlow{"udp", 40009, ap("10.96.0.10:53"), ap("10.244.1.13:8080"), true}
		if err := stale.insert(n); err != nil {
			t.Fatal(err)
		}
		c, err := conntrack.New(conntrack.Options{Handle: h})
		if err != nil {
			t.Fatal(err)
		}
		if deleted, err := c.Reconcile(snap); err != nil || deleted != 1 {
			t.Errorf("Reconcile = %d, %v; want 1, nil", deleted, err)
		}
		if diff := cmp.Diff(want, sports(t, n)); diff != "" {
			t.Errorf("flows left (source ports, -want +got):\n%s", diff)
		}
	})
}

// TestReconcileTraffic reproduces both kinds of stale flow with real UDP
// traffic from a client that keeps its source port, and shows Reconcile
// curing them.
func TestReconcileTraffic(t *testing.T) {
	backendtest.Require(t, "ip", "conntrack", "nft")
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 2})
	n.Serve(t, 8080)
	b := n.Pods()
	vip := netip.MustParseAddrPort("10.96.0.10:53")
	ctx := context.Background()
	const timeout = 500 * time.Millisecond

	// dnat points the VIP at a backend, or nowhere. The ct expression
	// makes the namespace track connections even without a nat rule (a
	// nat chain alone does not).
	dnat := func(t *testing.T, to *backendtest.Pod) {
		t.Helper()
		rule := "ct state new counter;"
		if to != nil {
			rule += fmt.Sprintf(" ip daddr %v udp dport %d dnat to %v:8080;", vip.Addr(), vip.Port(), to.IP)
		}
		script := "add table ip lbkt_ct; delete table ip lbkt_ct; add table ip lbkt_ct { chain pre { type nat hook prerouting priority dstnat; " + rule + " }; }"
		if out, err := n.NodeExec("nft", script); err != nil {
			t.Fatalf("nft: %v %s", err, out)
		}
	}
	reconcile := func(t *testing.T, snap *servicemap.Snapshot) int {
		t.Helper()
		c, err := conntrack.New(conntrack.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var deleted int
		if err := n.InNode(func() error {
			deleted, err = c.Reconcile(snap)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return deleted
	}

	t.Run("flow to a removed endpoint", func(t *testing.T) {
		dnat(t, &b[0])
		if got, err := n.DialUDP(ctx, 40053, vip, timeout); err != nil || got != "b0" {
			t.Fatalf("before: %q, %v; want b0", got, err)
		}
		dnat(t, &b[1])
		// The rules changed, the flow did not: the client still reaches b0.
		if got, err := n.DialUDP(ctx, 40053, vip, timeout); err != nil || got != "b0" {
			t.Fatalf("stale flow: %q, %v; want b0 (is conntrack not keeping the flow?)", got, err)
		}
		if d := reconcile(t, dnsSnapshot(t, b[1].IP)); d != 1 {
			t.Errorf("Reconcile deleted %d flows, want 1", d)
		}
		if got, err := n.DialUDP(ctx, 40053, vip, timeout); err != nil || got != "b1" {
			t.Errorf("after Reconcile: %q, %v; want b1", got, err)
		}
	})

	t.Run("flow from before the service had endpoints", func(t *testing.T) {
		dnat(t, nil)
		if got, err := n.DialUDP(ctx, 40054, vip, timeout); !backendtest.IsTimeout(err) {
			t.Fatalf("before: %q, %v; want a timeout", got, err)
		}
		// As kube-proxy's CleanStaleEntries: an un-NATed flow to a service
		// address is stale whether the service has endpoints or not (a
		// flow the previous subtest left to b1 may go too).
		if d := reconcile(t, dnsSnapshot(t)); d < 1 || slices.Contains(sports(t, n), 40054) {
			t.Fatalf("Reconcile without endpoints deleted %d flows, left %v; want the un-NATed flow deleted", d, sports(t, n))
		}
		if got, err := n.DialUDP(ctx, 40054, vip, timeout); !backendtest.IsTimeout(err) {
			t.Fatalf("again: %q, %v; want a timeout", got, err)
		}
		dnat(t, &b[0])
		if got, err := n.DialUDP(ctx, 40054, vip, timeout); !backendtest.IsTimeout(err) {
			t.Fatalf("stale flow: %q, %v; want a timeout (is conntrack not keeping the flow?)", got, err)
		}
		if d := reconcile(t, dnsSnapshot(t, b[0].IP)); d != 1 {
			t.Errorf("Reconcile deleted %d flows, want 1", d)
		}
		if got, err := n.DialUDP(ctx, 40054, vip, timeout); err != nil || got != "b0" {
			t.Errorf("after Reconcile: %q, %v; want b0", got, err)
		}
	})
}
