package nftables_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/servicemap"
)

// shape is a cluster of services x endpoints each (servicemaptest.Cluster).
type shape struct {
	services, endpoints int
	// large shapes run only with LBKIT_BENCH_LARGE=1: they take minutes
	// and gigabytes.
	large bool
}

func (s shape) String() string { return fmt.Sprintf("shape=%dx%d", s.services, s.endpoints) }

// The shapes users report (kubernetes#135639: 5,006 services with 250,011
// endpoints; kubernetes#139513: 44,125 services of about one endpoint),
// and a small one that always runs.
var (
	shapeSmall    = shape{1000, 10, false}
	shapeWide     = shape{5000, 50, true}
	shapeMany     = shape{44000, 1, true}
	reportedShape = []shape{shapeSmall, shapeWide, shapeMany}
)

// skipLarge skips a large size unless LBKIT_BENCH_LARGE=1 (and always with
// -short).
func skipLarge(tb testing.TB, large bool) {
	tb.Helper()
	if large && (testing.Short() || os.Getenv("LBKIT_BENCH_LARGE") != "1") {
		tb.Skip("large size: set LBKIT_BENCH_LARGE=1 (and no -short) to run it")
	}
}

// peakHeap runs f and returns the highest heap (bytes of live and not yet
// swept objects) seen while it ran, above what was live before, sampled
// every 100 µs.
func peakHeap(f func()) float64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base := read()
	peak := base
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(stop)
	wg.Wait()
	peak = max(peak, read())
	return float64(peak - base)
}

// retainedBytes returns the live heap growth caused by keeping build's
// result, after everything else it allocated is collected.
func retainedBytes(build func() any) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return float64(int64(after.HeapAlloc) - int64(before.HeapAlloc))
}

// BenchmarkBuild measures what a proxy starting at each shape does before
// it can program anything: every Service and EndpointSlice event into a
// Tracker, then the Snapshot. It reports the Snapshot's retained bytes per
// endpoint and the peak heap while building.
func BenchmarkBuild(b *testing.B) {
	for _, s := range reportedShape {
		b.Run(s.String(), func(b *testing.B) {
			skipLarge(b, s.large)
			o := cluster(s.services, s.endpoints)
			build := func() *servicemap.Snapshot {
				snap := o.tracker(v1.IPv4Protocol).Snapshot()
				if snap.Len() != s.services {
					b.Fatalf("snapshot has %d ports", snap.Len())
				}
				return snap
			}
			retained := retainedBytes(func() any { return build() }) / float64(s.services*s.endpoints)
			peak := peakHeap(func() { build() })
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				build()
			}
			b.ReportMetric(retained, "B/endpoint")
			b.ReportMetric(peak/(1<<20), "peak-heap-MB")
		})
	}
}
