//go:build linux

package nftables_test

import (
	"context"
	"testing"

	gnft "github.com/google/nftables"
	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemap"
)

// BenchmarkKernelDriftCheck measures Drifted with 10,000 services x 10
// endpoints programmed (16 tables): "unchanged" when nothing committed
// since the last check (the generation answers), "foreign-change" after
// another program's commit each time (untimed), which makes it list the
// tables and each one's dispatch chain.
func BenchmarkKernelDriftCheck(b *testing.B) {
	requireKernel(b)
	snap := cluster(10000, 10).snapshot(b, v1.IPv4Protocol)
	for _, foreign := range []bool{false, true} {
		name := "services=10000/unchanged"
		if foreign {
			name = "services=10000/foreign-change"
		}
		b.Run(name, func(b *testing.B) {
			// The namespace is entered on this goroutine's thread: every
			// kernel call below must stay on it.
			inThrowawayNetns(b, "drift", func() { benchDriftCheck(b, snap, foreign) })
		})
	}
}

func benchDriftCheck(b *testing.B, snap *servicemap.Snapshot, foreign bool) {
	ctx := context.Background()
	be, err := nftables.New(nftables.Spec{ClusterCIDRs: podCIDRs.ClusterCIDRs}, nftables.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if err := be.Sync(ctx, nil, snap); err != nil {
		b.Fatal(err)
	}
	defer be.Cleanup(ctx)
	c, err := gnft.New(gnft.AsLasting()) // a socket in the namespace, opened now
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseLasting()
	other := &gnft.Table{Name: "foreign", Family: gnft.TableFamilyIPv4}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if foreign {
			b.StopTimer()
			c.AddTable(other)
			c.DelTable(other)
			if err := c.Flush(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		drifted, err := be.Drifted(ctx)
		if err != nil || drifted {
			b.Fatalf("Drifted = %v, %v", drifted, err)
		}
	}
}
