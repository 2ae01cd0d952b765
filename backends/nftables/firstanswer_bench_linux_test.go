package nftables_test

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/nftables"
)

// BenchmarkColdSyncFirstAnswer measures, with real connections, how soon
// services answer during a cold sync (tables deleted before each
// iteration, untimed): first-answer-ms is when the first service the sync
// programs answered, all-answer-ms when the last of the probed services
// did, sync-ms when Sync returned. Probed are the first and the last
// service port in the order the sync programs them and 14 spread in
// between (the first to within 5 ms, the others to within 100 ms, so that
// the probes load the machine little); every endpoint is a real server (one backend namespace per
// endpoint). The "restart" sub-benchmarks sync the same state into a
// kernel that already holds it (a restarting proxy) and fail if any probe
// goes unanswered while the sync runs.
func BenchmarkColdSyncFirstAnswer(b *testing.B) {
	for _, s := range []shape{{500, 10, false}, shapeWide} {
		for _, restart := range []bool{false, true} {
			name := s.String()
			if restart {
				name += "/restart"
			}
			b.Run(name, func(b *testing.B) {
				skipLarge(b, s.large)
				benchFirstAnswer(b, s, restart)
			})
		}
	}
}

func benchFirstAnswer(b *testing.B, s shape, restart bool) {
	backendtest.Require(b, "ip", "nft")
	n := backendtest.NewNetwork(b, backendtest.NetworkOptions{Pods: s.endpoints})
	n.Serve(b, 8080)
	o := cluster(s.services, s.endpoints)
	backends := n.Pods()
	for i, es := range o.slices {
		es = es.DeepCopy()
		for j := range es.Endpoints {
			es.Endpoints[j].Addresses = []string{backends[j].IP.String()}
		}
		o.slices[i] = es
	}
	snap := o.snapshot(b, v1.IPv4Protocol)
	opts := nftables.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}
	order := nftables.ColdSyncOrderForTest(snap, opts)
	var targets []netip.AddrPort
	const probes = 16
	for k := range probes {
		name := order[k*(len(order)-1)/(probes-1)]
		p := snap.Service(name.Namespace, name.Name)[0]
		targets = append(targets, netip.AddrPortFrom(p.ClusterIP, uint16(p.Port)))
	}
	var be *nftables.Backend
	if err := n.InNode(func() (err error) {
		be, err = nftables.New(opts, nftables.Options{})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var firsts, alls, syncs []float64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if err := n.InNode(func() error {
			if restart {
				// The state a previous process left, then a new process.
				if err := be.Sync(ctx, nil, snap); err != nil {
					return err
				}
				var err error
				be, err = nftables.New(opts, nftables.Options{})
				return err
			}
			return be.Cleanup(ctx)
		}); err != nil {
			b.Fatal(err)
		}
		answered := make([]time.Duration, len(targets))
		failures := make([]int, len(targets))
		probeCtx, stopProbes := context.WithCancel(ctx)
		var wg sync.WaitGroup
		start := time.Now()
		var syncDone time.Duration
		var mu sync.Mutex
		for i, dst := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if restart {
					// Every connection must be answered: a lost SYN is
					// retransmitted after a second, so one second means lost.
					for probeCtx.Err() == nil {
						_, err := n.DialTCP(probeCtx, netip.Addr{}, dst, time.Second)
						mu.Lock()
						if err == nil && answered[i] == 0 {
							answered[i] = time.Since(start)
						}
						if err != nil && probeCtx.Err() == nil {
							b.Logf("%v: %v", dst, err)
							failures[i]++
						}
						mu.Unlock()
					}
					return
				}
				if i > 0 {
					// The others, to within 100 ms: one connection at a time.
					for probeCtx.Err() == nil {
						if _, err := n.DialTCP(probeCtx, netip.Addr{}, dst, 100*time.Millisecond); err == nil {
							mu.Lock()
							answered[i] = time.Since(start)
							mu.Unlock()
							return
						}
					}
					return
				}
				// The first service: a connection sent before the rules exist
				// is lost (its SYN is retransmitted only after a second), and
				// one sent after may be answered late on a loaded machine: so
				// start one every 5 ms, each waiting up to 300 ms, until one
				// answers.
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				var dials sync.WaitGroup
				defer dials.Wait()
				for {
					mu.Lock()
					done := answered[i] != 0
					mu.Unlock()
					if done || probeCtx.Err() != nil {
						return
					}
					dials.Add(1)
					go func() {
						defer dials.Done()
						if _, err := n.DialTCP(probeCtx, netip.Addr{}, dst, 300*time.Millisecond); err == nil {
							at := time.Since(start)
							mu.Lock()
							if answered[i] == 0 || at < answered[i] {
								answered[i] = at
							}
							mu.Unlock()
						}
					}()
					select {
					case <-tick.C:
					case <-probeCtx.Done():
					}
				}
			}()
		}
		b.StartTimer()
		err := n.InNode(func() error { return be.Sync(ctx, nil, snap) })
		syncDone = time.Since(start)
		b.StopTimer()
		if err != nil {
			stopProbes()
			wg.Wait()
			b.Fatal(err)
		}
		if restart {
			time.Sleep(10 * time.Millisecond) // a last probe after the sync
			stopProbes()
		} else {
			go func() { time.Sleep(10 * time.Second); stopProbes() }()
		}
		wg.Wait()
		stopProbes()
		for i, d := range answered {
			if d == 0 {
				b.Fatalf("service %v never answered", targets[i])
			}
			if failures[i] > 0 {
				b.Fatalf("service %v, programmed before the restart, went unanswered %d times during the sync", targets[i], failures[i])
			}
		}
		firsts = append(firsts, ms(answered[0]))
		alls = append(alls, ms(slices.Max(answered)))
		syncs = append(syncs, ms(syncDone))
		b.StartTimer()
	}
	b.ReportMetric(median(firsts), "first-answer-ms")
	b.ReportMetric(median(alls), "all-answer-ms")
	b.ReportMetric(median(syncs), "sync-ms")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
