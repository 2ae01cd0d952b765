//go:build linux

package ipvs_test

import (
	"context"
	"net/netip"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/backends/ipvs/ipvsfake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// BenchmarkFullSync is one full sync of 10,000 services x 10 endpoints on
// the fakes, into a kernel that has them already (the periodic resync):
// the full plan, the listings, the comparison.
func BenchmarkFullSync(b *testing.B) {
	be, tr := benchBackend(b)
	snap := tr.Snapshot()
	if err := be.Sync(context.Background(), nil, snap); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := be.Sync(context.Background(), nil, snap); err != nil {
			b.Fatal(err)
		}
	}
}

// benchBackend returns a Backend on fakes and a Tracker holding 10,000
// services x 10 endpoints.
func benchBackend(b *testing.B) (*ipvs.Backend, *servicemap.Tracker) {
	fake := knftables.NewFake(knftables.IPv4Family, ipvs.DefaultTable)
	be, err := ipvs.New(ipvs.Spec{}, ipvs.Options{IPVS: ipvsfake.NewIPVS(), Host: ipvsfake.NewHost(netip.MustParseAddr(nodeIP)),
		NFT: &recordingNFT{Fake: fake}})
	if err != nil {
		b.Fatal(err)
	}
	tr := servicemap.NewTracker(servicemap.Options{NodeName: thisNode})
	svcs, slices := servicemaptest.Cluster(10000, 10)
	for i := range svcs {
		tr.OnServiceAdd(svcs[i])
		tr.OnEndpointSliceAdd(slices[i])
	}
	return be, tr
}

// BenchmarkIncrementalSync is one incremental sync of 10,000 services x
// 10 endpoints on the fakes: one endpoint of one service turning not ready
// and back. It measures the backend's own work; the nftables fake records
// transactions without applying them (knftables' fake is quadratic in the
// elements of a set).
func BenchmarkIncrementalSync(b *testing.B) {
	be, tr := benchBackend(b)
	_, slices := servicemaptest.Cluster(10000, 10)
	sync := func(prev, next *servicemap.Snapshot) {
		if err := be.Sync(context.Background(), prev, next); err != nil {
			b.Fatal(err)
		}
	}
	prev := tr.Snapshot()
	sync(nil, prev)

	flip := servicemaptest.FlipReady(tr, slices[len(slices)/2])
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		next := flip()
		b.StartTimer()
		sync(prev, next)
		prev = next
	}
}
