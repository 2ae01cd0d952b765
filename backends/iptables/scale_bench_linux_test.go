//go:build linux

package iptables_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemaptest"
)

// BenchmarkKernelScale measures the shapes users report (kubernetes#135639:
// 5,000 services x 50 endpoints; kubernetes#139513: 44,000 services x 1)
// with both flavours: a cold sync into an empty kernel, and one endpoint of
// one service turning not-ready on top of the loaded state. They take
// minutes, so they run only with LBKIT_BENCH_LARGE=1; shape=100x10 always
// runs.
func BenchmarkKernelScale(b *testing.B) {
	for _, flavour := range []iptables.Flavour{iptables.FlavourNFT, iptables.FlavourLegacy} {
		for _, s := range []struct {
			services, eps int
			large         bool
		}{{100, 10, false}, {5000, 50, true}, {44000, 1, true}} {
			name := fmt.Sprintf("flavour=%s/shape=%dx%d", flavour, s.services, s.eps)
			b.Run(name, func(b *testing.B) {
				if s.large && (testing.Short() || os.Getenv("LBKIT_BENCH_LARGE") != "1") {
					b.Skip("large size: set LBKIT_BENCH_LARGE=1 to run it")
				}
				benchScale(b, flavour, s.services, s.eps)
			})
		}
	}
}

// benchScale reports cold-sync-s (the first sync into an empty kernel,
// once per run) and times the one-endpoint updates as the benchmark's
// iterations.
func benchScale(b *testing.B, flavour iptables.Flavour, services, eps int) {
	backendtest.Require(b, "ip", "iptables-"+string(flavour)+"-restore")
	n := backendtest.NewNetwork(b, backendtest.NetworkOptions{Pods: 1})
	be, err := iptables.New(iptables.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}, iptables.Options{Flavour: flavour})
	if err != nil {
		b.Fatal(err)
	}
	tr, slices := bigCluster(services, eps)
	k := &kernelBench{n: n, b: be, tr: tr, slices: slices}
	prev := tr.Snapshot()
	start := time.Now()
	k.sync(b, nil, prev)
	cold := time.Since(start)
	flip := servicemaptest.FlipReady(tr, slices[services/2])
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		next := flip()
		b.StartTimer()
		k.sync(b, prev, next)
		prev = next
	}
	b.StopTimer()
	// After the loop: the timer's first reset deletes metrics reported before.
	b.ReportMetric(cold.Seconds(), "cold-sync-s")
	if err := n.InNode(func() error { return be.Cleanup(context.Background()) }); err != nil {
		b.Fatal(err)
	}
}
