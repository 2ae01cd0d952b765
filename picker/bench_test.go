package picker_test

import (
	"fmt"
	"net/netip"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/picker"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// BenchmarkPick measures one pick on a port of 10 endpoints in a snapshot
// of 1,000 services, per policy; run with -cpu 1,2 for the parallel
// figures (b.RunParallel).
func BenchmarkPick(b *testing.B) {
	svcs, slices := servicemaptest.Cluster(1000, 10)
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node1"})
	for i := range svcs {
		tr.OnServiceAdd(svcs[i])
		tr.OnEndpointSliceAdd(slices[i])
	}
	snap := tr.Snapshot()
	name := snap.Ports()[500].Name
	for _, policy := range []picker.Policy{picker.RoundRobin, picker.Random, picker.LeastRequest, picker.Maglev} {
		p := picker.New(snap, picker.Options{Policy: policy})
		b.Run(policy.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := picker.Request{Client: netip.MustParseAddr("10.244.3.4")}
				for pb.Next() {
					req.Key++
					res, err := p.Pick(name, req)
					if err != nil {
						b.Fatal(err)
					}
					res.Done()
				}
			})
		})
	}
}

// BenchmarkPickerUpdate measures Update after one endpoint of one service
// turns not ready, at 10,000 services x 10 endpoints (the Tracker's
// Snapshot is not timed).
func BenchmarkPickerUpdate(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			svcs, slices := servicemaptest.Cluster(n, 10)
			tr := servicemap.NewTracker(servicemap.Options{NodeName: "node1"})
			for i := range svcs {
				tr.OnServiceAdd(svcs[i])
				tr.OnEndpointSliceAdd(slices[i])
			}
			p := picker.New(tr.Snapshot(), picker.Options{})
			target := slices[n/2]
			flip := [2]*discoveryv1.EndpointSlice{target.DeepCopy(), target.DeepCopy()}
			flip[1].Endpoints[3].Conditions.Ready = servicemaptest.Ptr(false)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				tr.OnEndpointSliceUpdate(nil, flip[(i+1)%2])
				snap := tr.Snapshot()
				b.StartTimer()
				p.Update(snap)
			}
		})
	}
}
