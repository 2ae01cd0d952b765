package iptables_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// bigCluster returns a tracker holding servicemaptest.Cluster(n, eps), and the
// slices, so a benchmark can change one.
func bigCluster(n, eps int) (*servicemap.Tracker, []*discoveryv1.EndpointSlice) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	svcs, slices := servicemaptest.Cluster(n, eps)
	for i := range svcs {
		tr.OnServiceAdd(svcs[i])
		tr.OnEndpointSliceAdd(slices[i])
	}
	return tr, slices
}

// BenchmarkRender computes the full restore input for 10,000 services x 10
// endpoints (100 with -short) and streams it into a writer that only counts
// it, as kube-proxy's benchmark harness counts its input; it reports the
// size and the allocations per service port. String is Render, which
// returns the whole input as one string.
func BenchmarkRender(b *testing.B) {
	services := benchServices()
	tr, _ := bigCluster(services, 10)
	snap := tr.Snapshot()
	ports := float64(len(snap.Ports()))
	b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
		b.ReportAllocs()
		var w countingWriter
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for b.Loop() {
			w = 0
			if err := iptables.RenderTo(&w, snap, iptables.Spec{}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		runs := float64(b.N)
		b.ReportMetric(float64(w), "bytes")
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/runs/ports, "allocs/port")
		b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/runs/ports, "B/port")
	})
	b.Run(fmt.Sprintf("String/services=%d", services), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = iptables.Render(snap, iptables.Spec{})
		}
	})
}

// BenchmarkFullSync measures a full sync of 10,000 services x 10 endpoints
// (100 with -short) by a backend that synced the same services before, as
// after an outside flush: listing the tables (answered by a fake), the
// rules of every port kept from the last sync (chain names, comments,
// dispatch lines), and the whole restore input streamed to a fake
// iptables-restore that counts it. It is the same work as kube-proxy's
// syncProxyRules with needFullSync against a fake iptables, which keeps
// its chain names in its service and endpoint infos too.
func BenchmarkFullSync(b *testing.B) {
	services := benchServices()
	tr, _ := bigCluster(services, 10)
	snap := tr.Snapshot()
	rec := &recorder{}
	be, err := iptables.New(iptables.Spec{}, iptables.Options{Exec: rec, Flavour: iptables.FlavourLegacy})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := be.Sync(ctx, nil, snap); err != nil {
		b.Fatal(err)
	}
	b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := be.Sync(ctx, nil, snap); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rec.lastSize), "bytes")
	})
}

type countingWriter int

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}

// recorder is an Executor that answers iptables-save with nothing and
// remembers the size of the last restore input, so a benchmark measures the
// library's own work.
type recorder struct {
	mu       sync.Mutex
	lastSize int
}

func (r *recorder) Run(_ context.Context, program string, args []string, stdin io.Reader) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if stdin != nil {
		n, err := io.Copy(io.Discard, stdin)
		if err != nil {
			return nil, err
		}
		r.lastSize = int(n)
	}
	if i := slices.Index(args, "-S"); i >= 0 && i+1 < len(args) { // the canary check
		return []byte("-A " + args[i+1] + " -j RETURN\n"), nil
	}
	return nil, nil
}

// BenchmarkUpdate measures one endpoint change at 10,000 services: Diff, the
// partial restore input, and the bookkeeping (no process is started). It
// reports the partial restore's size next to the full one's.
func BenchmarkUpdate(b *testing.B) {
	tr, slices := bigCluster(10000, 10)
	rec := &recorder{}
	be, err := iptables.New(iptables.Spec{}, iptables.Options{Exec: rec, Flavour: iptables.FlavourNFT, BatchSize: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	prev := tr.Snapshot()
	if err := be.Sync(ctx, nil, prev); err != nil {
		b.Fatal(err)
	}
	full := rec.lastSize
	target := slices[5000]
	flipped := target.DeepCopy()
	flipped.Endpoints[3].Conditions.Ready = servicemaptest.Ptr(false)
	versions := [2]*discoveryv1.EndpointSlice{flipped, target}
	// Prepare snapshots outside the timed loop: the tracker's cost is
	// servicemap's benchmark; this one measures the backend.
	snaps := make([]*servicemap.Snapshot, 2)
	for i := range snaps {
		tr.OnEndpointSliceUpdate(nil, versions[i])
		snaps[i] = tr.Snapshot()
	}
	if err := be.Sync(ctx, prev, snaps[0]); err != nil {
		b.Fatal(err)
	}
	prev = snaps[0]
	b.Run("services=10000", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			next := snaps[(i+1)%2]
			if err := be.Sync(ctx, prev, next); err != nil {
				b.Fatal(err)
			}
			prev = next
		}
		b.ReportMetric(float64(rec.lastSize), "partial-bytes")
		b.ReportMetric(float64(full), "full-bytes")
	})
}

var _ = v1.ProtocolTCP
