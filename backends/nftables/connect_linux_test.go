//go:build linux

package nftables_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemaptest"
)

// BenchmarkConnect measures a TCP connection through a service VIP (connect,
// one reply, close) with 100 and with 10,000 services programmed. The
// verdict map makes dispatch one lookup, so the two should be close.
func BenchmarkConnect(b *testing.B) {
	for _, services := range []int{100, 10000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			backendtest.Require(b, "ip", "nft")
			n := backendtest.NewNetwork(b, backendtest.NetworkOptions{Pods: 3})
			n.Serve(b, 8080)
			o := cluster(services, 10)
			// The last service points at the network's real servers.
			var eps []servicemaptest.Endpoint
			for _, be := range n.Pods() {
				eps = append(eps, servicemaptest.Ready(be.IP.String(), "other"))
			}
			last := o.slices[services-1]
			o.slices[services-1] = servicemaptest.Slice(last.Namespace, last.Labels["kubernetes.io/service-name"], last.Name,
				last.Ports, eps)
			snap := o.snapshot(b, v1.IPv4Protocol)
			be, err := nftables.New(nftables.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}, nftables.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if err := n.InNode(func() error { return be.Sync(context.Background(), nil, snap) }); err != nil {
				b.Fatal(err)
			}
			svc := o.services[services-1]
			dst := netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIP), 80)
			ctx := context.Background()
			for b.Loop() {
				if _, err := n.DialTCP(ctx, netip.Addr{}, dst, 2*time.Second); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
