//go:build linux

package ipvs_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	mobyipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"

	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// BenchmarkKernelScale programs the shapes users report (kubernetes#135639:
// 5,000 services x 50 endpoints; kubernetes#139513: 44,000 x 1) into IPVS
// in a throwaway namespace: cold-sync-s is the first sync into an empty
// kernel (every virtual and real server, the dummy link's addresses and
// the netfilter table), and the timed iterations are one endpoint of one
// service turning not ready and back. The host has no IPVS, so it runs in
// the VM (vmtest/run.sh with TEST_BENCH=KernelScale; the large shapes with
// LBKIT_BENCH_LARGE=1 too). shape=100x10 always runs.
func BenchmarkKernelScale(b *testing.B) {
	if _, err := netlink.GenlFamilyGet("IPVS"); err != nil {
		if inVM() || os.Getenv("LBKIT_E2E") == "1" {
			b.Fatalf("no IPVS in this kernel: %v", err)
		}
		b.Skipf("no IPVS in this kernel (%v): run it in the VM, TEST_BENCH=KernelScale backends/ipvs/vmtest/run.sh", err)
	}
	for _, s := range []struct {
		services, eps int
		large         bool
	}{{100, 10, false}, {5000, 50, true}, {44000, 1, true}} {
		b.Run(fmt.Sprintf("shape=%dx%d", s.services, s.eps), func(b *testing.B) {
			if s.large && os.Getenv("LBKIT_BENCH_LARGE") != "1" {
				b.Skip("large size: set LBKIT_BENCH_LARGE=1 to run it")
			}
			benchScale(b, s.services, s.eps)
		})
	}
}

func benchScale(b *testing.B, services, eps int) {
	backendtest.Require(b, "ip", "nft")
	n := backendtest.NewNetwork(b, backendtest.NetworkOptions{Pods: 1})
	// New in the node's namespace: the backend's sockets live where they
	// are made.
	var be *ipvs.Backend
	if err := n.InNode(func() (err error) {
		be, err = ipvs.New(ipvs.Spec{ClusterCIDRs: n.ClusterCIDRs()}, ipvs.Options{})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	svcs, slices := servicemaptest.Cluster(services, eps)
	for i := range svcs {
		tr.OnServiceAdd(svcs[i])
		tr.OnEndpointSliceAdd(slices[i])
	}
	sync := func(prev, next *servicemap.Snapshot) {
		b.Helper()
		if err := n.InNode(func() error { return be.Sync(context.Background(), prev, next) }); err != nil {
			b.Fatal(err)
		}
	}
	prev := tr.Snapshot()
	start := time.Now()
	sync(nil, prev)
	cold := time.Since(start)

	var virtual, real int
	if err := n.InNode(func() error {
		h, err := mobyipvs.New("")
		if err != nil {
			return err
		}
		defer h.Close()
		vss, err := h.GetServices()
		if err != nil {
			return err
		}
		virtual = len(vss)
		for _, vs := range vss {
			ds, err := h.GetDestinations(vs)
			if err != nil {
				return err
			}
			real += len(ds)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if virtual < services || real < services*eps {
		b.Fatalf("after the cold sync IPVS has %d virtual and %d real servers, want at least %d and %d", virtual, real, services, services*eps)
	}

	flip := servicemaptest.FlipReady(tr, slices[services/2])
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		next := flip()
		b.StartTimer()
		sync(prev, next)
		prev = next
	}
	b.StopTimer()
	// After the loop: the timer's first reset deletes metrics reported before.
	b.ReportMetric(cold.Seconds(), "cold-sync-s")
	if err := n.InNode(func() error { return be.Cleanup(context.Background()) }); err != nil {
		b.Fatal(err)
	}
}
