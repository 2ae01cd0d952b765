//go:build linux

package nftables_test

import (
	"context"
	"fmt"
	"testing"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

func BenchmarkRender(b *testing.B) {
	sizes := []shape{{1000, 10, false}, {10000, 10, false}, shapeWide, shapeMany}
	for _, s := range sizes {
		name := s.String()
		if s.endpoints == 10 {
			name = fmt.Sprintf("services=%d", s.services) // the names the README quoted first
		}
		b.Run(name, func(b *testing.B) {
			skipLarge(b, s.large)
			snap := cluster(s.services, s.endpoints).snapshot(b, v1.IPv4Protocol)
			opts := nftables.Spec{ClusterCIDRs: podCIDRs.ClusterCIDRs}
			peak := peakHeap(func() { nftables.Render(snap, opts) })
			b.ReportAllocs()
			b.ResetTimer()
			var out string
			for b.Loop() {
				out = nftables.Render(snap, opts)
			}
			b.ReportMetric(float64(len(out)), "bytes")
			b.ReportMetric(float64(len(out))/float64(s.services*s.endpoints), "B/endpoint")
			b.ReportMetric(peak/(1<<20), "peak-heap-MB")
		})
	}
}

// discardNFT is a knftables.Interface whose table is always empty and which
// accepts every transaction without looking at it: what remains measured is
// lbkit's own work.
type discardNFT struct{ *knftables.Fake }

func (discardNFT) Run(context.Context, *knftables.Transaction) error { return nil }

// oneEndpointApart returns a snapshot of n services x 10 endpoints and the
// next one, in which one endpoint of one service is no longer ready.
func oneEndpointApart(b *testing.B, n int) (a, c *servicemap.Snapshot) {
	o := cluster(n, 10)
	tr := o.tracker(v1.IPv4Protocol)
	a = tr.Snapshot()
	es := o.slices[n/2].DeepCopy()
	es.Endpoints[4].Conditions.Ready = servicemaptest.Ptr(false)
	tr.OnEndpointSliceUpdate(o.slices[n/2], es)
	return a, tr.Snapshot()
}

// BenchmarkUpdate measures what lbkit computes for a one-endpoint change in
// a large cluster: Diff, the new rules of the changed port, and the
// incremental transaction (whose run is discarded).
func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			a, c := oneEndpointApart(b, n)
			nft := discardNFT{knftables.NewFake(knftables.IPv4Family, "lbkit")}
			be, err := nftables.New(nftables.Spec{ClusterCIDRs: podCIDRs.ClusterCIDRs}, nftables.Options{NFT: nft})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := be.Sync(ctx, nil, a); err != nil {
				b.Fatal(err)
			}
			prev, next := a, c
			b.ReportAllocs()
			for b.Loop() {
				if err := be.Sync(ctx, prev, next); err != nil {
					b.Fatal(err)
				}
				prev, next = next, prev
			}
		})
	}
}
