package servicemap_test

import (
	"fmt"
	"runtime"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// BenchmarkBuild measures going from nothing to a Snapshot of 10,000
// services x 10 endpoints, and reports the heap the snapshot keeps alive per
// endpoint (after a GC, with the tracker and the input objects gone).
func BenchmarkBuild(b *testing.B) {
	const n, eps = 10000, 10
	svcs, slices := servicemaptest.Cluster(n, eps)
	b.ReportAllocs()
	var retained float64
	for i := 0; b.Loop(); i++ {
		tr := servicemap.NewTracker(servicemap.Options{NodeName: "node1"})
		for _, s := range svcs {
			tr.OnServiceAdd(s)
		}
		for _, es := range slices {
			tr.OnEndpointSliceAdd(es)
		}
		snap := tr.Snapshot()
		if snap.Len() != n {
			b.Fatalf("snapshot has %d ports", snap.Len())
		}
		if i == 0 {
			b.StopTimer()
			retained = retainedBytes(func() any {
				tr := servicemap.NewTracker(servicemap.Options{NodeName: "node1"})
				s2, sl2 := servicemaptest.Cluster(n, eps)
				for _, s := range s2 {
					tr.OnServiceAdd(s)
				}
				for _, es := range sl2 {
					tr.OnEndpointSliceAdd(es)
				}
				return tr.Snapshot()
			}) / (n * eps)
			b.StartTimer()
		}
	}
	b.ReportMetric(retained, "B/endpoint")
}

// retainedBytes returns the live heap growth caused by keeping build's
// result, after everything else it allocated is collected.
func retainedBytes(build func() any) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	kept := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	return float64(after.HeapAlloc) - float64(before.HeapAlloc)
}

// BenchmarkSliceUpdate measures one EndpointSlice change (an endpoint turns
// not ready, then back) followed by Snapshot and Diff, at two cluster sizes:
// the cost must not grow with the cluster.
func BenchmarkSliceUpdate(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			svcs, slices := servicemaptest.Cluster(n, 10)
			tr := servicemap.NewTracker(servicemap.Options{NodeName: "node1"})
			for _, s := range svcs {
				tr.OnServiceAdd(s)
			}
			for _, es := range slices {
				tr.OnEndpointSliceAdd(es)
			}
			prev := tr.Snapshot()
			target := slices[n/2]
			flipped := target.DeepCopy()
			flipped.Endpoints[3].Conditions.Ready = servicemaptest.Ptr(false)
			versions := [2]*discoveryv1.EndpointSlice{flipped, target}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				tr.OnEndpointSliceUpdate(versions[(i+1)%2], versions[i%2])
				next := tr.Snapshot()
				c := servicemap.Diff(prev, next)
				if len(c.Updated) != 1 {
					b.Fatalf("diff has %d updates", len(c.Updated))
				}
				prev = next
			}
		})
	}
}

// BenchmarkServiceManyPorts measures one update of a Service with 20,000
// ports (a port range written out, as some users do), with one
// EndpointSlice naming them all: Snapshot and Diff after a label change
// that leaves the ports as they were, then after one port's change. The
// cost must stay linear in the ports.
func BenchmarkServiceManyPorts(b *testing.B) {
	const n = 20000
	ports := make([]v1.ServicePort, n)
	slicePorts := make([]discoveryv1.EndpointPort, n)
	for i := range ports {
		name := fmt.Sprintf("p%d", i)
		ports[i] = servicemaptest.Port(name, int32(10000+i), v1.ProtocolTCP)
		slicePorts[i] = servicemaptest.SlicePort(name, int32(10000+i), v1.ProtocolTCP)
	}
	svc := servicemaptest.Service("ns", "range", "10.96.0.1", ports)
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node1"})
	tr.OnServiceAdd(svc)
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "range", "range-1", slicePorts, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.244.0.1", "node1"), servicemaptest.Ready("10.244.0.2", "node2"),
	}))
	prev := tr.Snapshot()
	if prev.Len() != n {
		b.Fatalf("snapshot has %d ports", prev.Len())
	}
	changed := svc.DeepCopy()
	changed.Spec.Ports[n/2].Port = 9
	versions := [2]*v1.Service{changed, svc}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tr.OnServiceUpdate(versions[(i+1)%2], versions[i%2])
		next := tr.Snapshot()
		if c := servicemap.Diff(prev, next); len(c.Added)+len(c.Updated)+len(c.Removed) == 0 {
			b.Fatal("the change is not in the diff")
		}
		prev = next
	}
}
