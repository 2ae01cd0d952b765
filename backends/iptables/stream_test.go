package iptables_test

import (
	"bytes"
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/backends/iptables"
)

// Rendering on any number of goroutines writes the same bytes, and
// RenderTo writes what Render returns.
func TestRenderSameOnAnyCores(t *testing.T) {
	snap := mixedCluster(2000).Snapshot()
	spec := iptables.Spec{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var want string
	for _, procs := range []int{1, 2, 3, 8} {
		runtime.GOMAXPROCS(procs)
		got := iptables.Render(snap, spec)
		var b bytes.Buffer
		if err := iptables.RenderTo(&b, snap, spec); err != nil {
			t.Fatal(err)
		}
		if b.String() != got {
			t.Fatalf("GOMAXPROCS=%d: RenderTo and Render differ", procs)
		}
		if procs == 1 {
			want = got
			continue
		}
		if got != want {
			t.Errorf("GOMAXPROCS=%d: output differs from GOMAXPROCS=1 (%d vs %d bytes)", procs, len(got), len(want))
		}
	}
	if n := strings.Count(want, "\n"); n < 20000 {
		t.Fatalf("only %d lines: the test covers too little", n)
	}
}

// failingWriter accepts limit bytes, then fails.
type failingWriter struct{ limit int }

var errFull = errors.New("full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.limit {
		n := w.limit
		w.limit = 0
		return n, errFull
	}
	w.limit -= len(p)
	return len(p), nil
}

// RenderTo stops at the writer's first error and returns it, with one
// goroutine or several.
func TestRenderToWriterError(t *testing.T) {
	snap := mixedCluster(2000).Snapshot()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 4} {
		runtime.GOMAXPROCS(procs)
		for _, limit := range []int{0, 100, 200000, 1000000} {
			if err := iptables.RenderTo(&failingWriter{limit: limit}, snap, iptables.Spec{}); !errors.Is(err, errFull) {
				t.Errorf("GOMAXPROCS=%d, limit %d: RenderTo = %v, want %v", procs, limit, err, errFull)
			}
		}
	}
}

// Rendering allocates a small constant per service port, not per rule:
// no fmt or string concatenation per rule, buffers reused.
func TestRenderAllocsPerPort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds clusters of thousands of services")
	}
	perPort := func(services int) float64 {
		tr, _ := bigCluster(services, 10)
		snap := tr.Snapshot()
		var w countingWriter
		allocs := testing.AllocsPerRun(3, func() {
			if err := iptables.RenderTo(&w, snap, iptables.Spec{}); err != nil {
				t.Fatal(err)
			}
		})
		return allocs / float64(len(snap.Ports()))
	}
	small, large := perPort(500), perPort(5000)
	t.Logf("allocations per port: %.2f at 500 services, %.2f at 5,000", small, large)
	if large > 8 {
		t.Errorf("%.2f allocations per port at 5,000 services x 10 endpoints, want at most 8", large)
	}
	if large > small+1 {
		t.Errorf("allocations per port grow with the number of ports: %.2f at 500, %.2f at 5,000", small, large)
	}
}
