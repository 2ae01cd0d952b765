//go:build linux

package iptables_test

import (
	"context"
	"testing"

	"github.com/lbkit/lbkit/backends/iptables"
)

// BenchmarkKernelDriftCheck measures Drifted (the canary chain of each
// table, read by two iptables runs) with 10,000 services x 10 endpoints
// programmed.
func BenchmarkKernelDriftCheck(b *testing.B) {
	for _, fl := range []iptables.Flavour{iptables.FlavourNFT, iptables.FlavourLegacy} {
		b.Run("flavour="+string(fl)+"/services=10000", func(b *testing.B) {
			k := newKernelBench(b, 10000, fl)
			k.sync(b, nil, k.tr.Snapshot())
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				var drifted bool
				if err := k.n.InNode(func() error {
					var err error
					drifted, err = k.b.Drifted(ctx)
					return err
				}); err != nil || drifted {
					b.Fatalf("Drifted = %v, %v", drifted, err)
				}
			}
		})
	}
}
