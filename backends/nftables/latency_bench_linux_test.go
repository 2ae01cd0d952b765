//go:build linux

package nftables_test

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// inNode runs a backend's syncs inside a test Network's node namespace,
// whatever goroutine the Runner calls them from.
type inNode struct {
	*nftables.Backend
	n *backendtest.Network
}

func (b inNode) Sync(ctx context.Context, prev, next *servicemap.Snapshot) error {
	return b.n.InNode(func() error { return b.Backend.Sync(ctx, prev, next) })
}

func (b inNode) SyncChanges(ctx context.Context, prev, next *servicemap.Snapshot, c *servicemap.Changes) error {
	return b.n.InNode(func() error { return b.Backend.SyncChanges(ctx, prev, next, c) })
}

// BenchmarkProgrammingLatency measures network programming latency at
// 10,000 services x 10 endpoints: a steady churn of EndpointSlice updates
// (50 per second, each stamped with its last-change-trigger-time) goes
// through Tracker -> Runner -> nftables in a namespace, and the Runner's
// Metrics.ProgrammingLatency reports, per update, the time from the
// stamp to the end of the sync that put it in the kernel. One iteration
// is one update; p50 and p99 are reported. With MinSyncInterval 0 every
// update is synced as soon as the loop is free; with the default (1 s)
// updates wait for the interval, as in kube-proxy.
func BenchmarkProgrammingLatency(b *testing.B) {
	const services, endpoints = 10000, 10
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{{"MinSyncInterval=0", -1}, {"MinSyncInterval=default", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			backendtest.Require(b, "ip", "nft")
			n := backendtest.NewNetwork(b, backendtest.NetworkOptions{Pods: 1})
			o := cluster(services, endpoints)
			tr := o.tracker(v1.IPv4Protocol)
			be, err := nftables.New(nftables.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}, nftables.Options{})
			if err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			var latencies []time.Duration
			firstSync := make(chan struct{})
			var once sync.Once
			r := backends.NewRunner(tr, inNode{be, n}, backends.RunnerOptions{
				NoWaitForSync: true, MinSyncInterval: tc.interval,
				OnSync: func(res backends.SyncResult) {
					if res.Err == nil {
						once.Do(func() { close(firstSync) })
					}
				},
				Metrics: &backends.Metrics{ProgrammingLatency: func(_ string, d time.Duration) {
					mu.Lock()
					latencies = append(latencies, d)
					mu.Unlock()
				}},
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			select {
			case <-firstSync:
			case <-time.After(5 * time.Minute):
				b.Fatal("no first sync")
			}

			tick := time.NewTicker(20 * time.Millisecond) // 50 updates per second
			defer tick.Stop()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				<-tick.C
				es := o.slices[(i*7919)%services].DeepCopy()
				ep := &es.Endpoints[i%endpoints]
				ep.Conditions.Ready = servicemaptest.Ptr(false) // each slice changes once: b.N <= 10,000
				es.Annotations = map[string]string{servicemap.AnnotationLastChangeTriggerTime: time.Now().Format(time.RFC3339Nano)}
				tr.OnEndpointSliceUpdate(nil, es)
			}
			b.StopTimer()
			// The last updates' syncs.
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				mu.Lock()
				got := len(latencies)
				mu.Unlock()
				if got >= b.N {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(latencies) < b.N {
				b.Fatalf("%d updates, %d latencies reported", b.N, len(latencies))
			}
			slices.Sort(latencies)
			q := func(p float64) float64 {
				return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
