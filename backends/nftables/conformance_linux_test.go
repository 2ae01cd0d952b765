package nftables_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// TestConformance runs the backend conformance suite: real packets through
// the rules, in namespaces the suite creates, in IPv4 and IPv6 and with the
// options of each variant (NodePortAddresses, no cluster CIDRs). The
// defaults (netlink, 16 tables) and the other shape (the nft binary, one
// table) both pass it.
func TestConformance(t *testing.T) {
	for _, v := range []struct {
		name      string
		transport nftables.Transport
		shards    int
	}{
		{"netlink-sharded", nftables.TransportNetlink, 0},
		{"nft-one-table", nftables.TransportNFT, 1},
	} {
		t.Run(v.name, func(t *testing.T) {
			backendtest.Run(t, func(t *testing.T, n *backendtest.Network) backends.Interface {
				b, err := nftables.New(nftables.Spec{
					ClusterCIDRs:      n.ClusterCIDRs(),
					MasqueradeAll:     n.MasqueradeAll(),
					NodePortAddresses: n.NodePortAddresses(),
					NodeIPs:           n.NodeIPs(),
					Shards:            v.shards,
				}, nftables.Options{Transport: v.transport})
				if err != nil {
					t.Fatal(err)
				}
				return b
			}, backendtest.SuiteOptions{Parallel: true})
		})
	}
}

// TestKernelTraffic covers behaviour particular to this backend's ruleset,
// with real packets: hairpin through the hairpin set, and the node's own
// connection to an externalTrafficPolicy=Local address without a local
// endpoint, which short-circuits (the no-endpoint check on output runs
// after DNAT) while the same address is dropped for outside clients.
func TestKernelTraffic(t *testing.T) {
	backendtest.Require(t, "ip", "nft")
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{})
	n.Serve(t, 8080)
	bes := n.Pods()
	const node = "node"
	ctx := t.Context()

	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	// hairpin's only endpoint is backend 0, on this node.
	tr.OnServiceAdd(servicemaptest.Service("t", "hairpin", "10.96.0.10", tcp80))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("t", "hairpin", "hairpin-1", tcp8080, eps(servicemaptest.Ready(bes[0].IP.String(), node))))
	// remote's only endpoint, backend 1, counts as on another node.
	tr.OnServiceAdd(servicemaptest.Service("t", "remote", "10.96.0.11", tcp80, servicemaptest.ExternalIPs("10.97.0.5"), servicemaptest.ExternalLocal(0),
		func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort }))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("t", "remote", "remote-1", tcp8080, eps(servicemaptest.Ready(bes[1].IP.String(), "other"))))

	var b *nftables.Backend
	err := n.InNode(func() error {
		var err error
		if b, err = nftables.New(nftables.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}, nftables.Options{}); err != nil {
			return err
		}
		return b.Sync(ctx, nil, tr.Snapshot())
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.InNode(func() error { return b.Cleanup(context.Background()) })

	if got, err := n.DialTCPFrom(bes[0].NS, netip.Addr{}, netip.MustParseAddrPort("10.96.0.10:80"), 2*time.Second); err != nil || got != bes[0].Name {
		t.Errorf("hairpin: backend 0 through its own service got %q, %v; want %q", got, err, bes[0].Name)
	}
	external := netip.MustParseAddrPort("10.97.0.5:80")
	if got, err := n.DialTCPFrom(n.NodeNS(), netip.Addr{}, external, 2*time.Second); err != nil || got != bes[1].Name {
		t.Errorf("node to an eTP=Local external IP without local endpoint got %q, %v; want the short-circuit to %q", got, err, bes[1].Name)
	}
	if got, err := n.DialTCPFrom(bes[2].NS, netip.Addr{}, external, 2*time.Second); err != nil || got != bes[1].Name {
		t.Errorf("pod to an eTP=Local external IP without local endpoint got %q, %v; want the short-circuit to %q", got, err, bes[1].Name)
	}
	if got, err := n.DialTCP(ctx, netip.Addr{}, external, 500*time.Millisecond); !backendtest.IsTimeout(err) {
		t.Errorf("outside client to an eTP=Local external IP without local endpoint got %q, %v; want it dropped", got, err)
	}

	// A port the service does not have is refused at once (cluster-ips),
	// for forwarded and for the node's own traffic; its real port works.
	wrongPort := netip.MustParseAddrPort("10.96.0.11:81")
	if got, err := n.DialTCP(ctx, netip.Addr{}, wrongPort, 2*time.Second); !backendtest.IsRefused(err) {
		t.Errorf("client to a cluster IP's unknown port got %q, %v; want it refused", got, err)
	}
	if got, err := n.DialTCPFrom(n.NodeNS(), netip.Addr{}, wrongPort, 2*time.Second); !backendtest.IsRefused(err) {
		t.Errorf("node to a cluster IP's unknown port got %q, %v; want it refused", got, err)
	}
	if got, err := n.DialTCP(ctx, netip.Addr{}, netip.MustParseAddrPort("10.96.0.11:80"), 2*time.Second); err != nil || got != bes[1].Name {
		t.Errorf("client to the cluster IP's port got %q, %v; want %q", got, err, bes[1].Name)
	}
}
