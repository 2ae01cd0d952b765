//go:build linux

package nftables_test

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// TestKernelUnallocatedServiceCIDR: with service CIDRs known, a new
// connection to an address of the range that no Service holds is dropped,
// from a client and from the node itself; with 16 shards, every Service's
// own verdicts still come first: its port answers, and a port it does not
// have is refused, whichever table it lives in. When the ranges go, so do
// the set and the chains.
func TestKernelUnallocatedServiceCIDR(t *testing.T) {
	backendtest.Require(t, "ip", "nft")
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 1})
	n.Serve(t, 8080)
	be := n.Pods()[0]
	cidr := n.ServiceCIDR()
	serviceCIDR := &networkingv1.ServiceCIDR{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes"},
		Spec: networkingv1.ServiceCIDRSpec{CIDRs: []string{cidr.String()}}}

	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	tr.OnServiceCIDRAdd(serviceCIDR)
	const services = 24 // spread over the 16 tables
	var vips []netip.Addr
	a := cidr.Addr()
	for i := range services {
		a = a.Next()
		vips = append(vips, a)
		name := fmt.Sprintf("svc-%d", i)
		tr.OnServiceAdd(servicemaptest.Service("ns", name, a.String(), []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
		tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", name, name+"-1",
			[]discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)},
			[]servicemaptest.Endpoint{servicemaptest.Ready(be.IP.String(), "other")}))
	}
	unallocated := a.Next().Next()
	snap := tr.Snapshot()
	b, err := nftables.New(nftables.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}, Shards: 16}, nftables.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sync := func(prev, next *servicemap.Snapshot) {
		t.Helper()
		if err := n.InNode(func() error { return b.Sync(context.Background(), prev, next) }); err != nil {
			t.Fatal(err)
		}
	}
	sync(nil, snap)

	ctx := context.Background()
	for _, vip := range vips {
		if got, err := n.DialTCP(ctx, netip.Addr{}, netip.AddrPortFrom(vip, 80), 2*time.Second); err != nil || got != be.Name {
			t.Errorf("%s:80 = %q, %v; want %s", vip, got, err, be.Name)
		}
		if _, err := n.DialTCP(ctx, netip.Addr{}, netip.AddrPortFrom(vip, 81), time.Second); !backendtest.IsRefused(err) {
			t.Errorf("%s:81 (no such port) = %v; want refused", vip, err)
		}
	}
	// Without the drop the address would be routed on, as a real node
	// routes it towards its default gateway: here to the backend, which
	// holds it and would answer.
	ipIn := func(ns string, args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"netns", "exec", ns, "ip"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v in %s: %v: %s", args, ns, err, out)
		}
	}
	ipIn(be.NS, "addr", "add", unallocated.String()+"/32", "dev", "lo")
	ipIn(n.NodeNS(), "route", "add", unallocated.String()+"/32", "via", be.IP.String())
	dst := netip.AddrPortFrom(unallocated, 8080)
	if _, err := n.DialTCP(ctx, netip.Addr{}, dst, 500*time.Millisecond); !backendtest.IsTimeout(err) {
		t.Errorf("client to unallocated %s = %v; want dropped (a timeout)", dst, err)
	}
	if _, err := n.DialTCPFrom(n.NodeNS(), netip.Addr{}, dst, 500*time.Millisecond); !backendtest.IsTimeout(err) {
		t.Errorf("node to unallocated %s = %v; want dropped (a timeout)", dst, err)
	}

	// The ranges go: an incremental sync becomes full and removes them.
	tr.OnServiceCIDRDelete(serviceCIDR)
	next := tr.Snapshot()
	sync(snap, next)
	out, err := exec.Command("ip", "netns", "exec", n.NodeNS(), "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	for _, gone := range []string{"service-cidrs", "unallocated"} {
		if strings.Contains(string(out), gone) {
			t.Errorf("%s still in the ruleset after the service CIDRs went:\n%s", gone, out)
		}
	}
	if got, err := n.DialTCP(ctx, netip.Addr{}, netip.AddrPortFrom(vips[0], 80), 2*time.Second); err != nil || got != be.Name {
		t.Errorf("after the change, %s:80 = %q, %v", vips[0], got, err)
	}
}
