//go:build linux

package iptables_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// countedDrift counts the drift checks and their answers.
type countedDrift struct {
	*iptables.Backend
	checks, drifts atomic.Int32
}

func (c *countedDrift) Drifted(ctx context.Context) (bool, error) {
	d, err := c.Backend.Drifted(ctx)
	c.checks.Add(1)
	if d || err != nil {
		c.drifts.Add(1)
	}
	return d, err
}

// TestKernelDriftRepair runs a real Runner over the iptables backend, both
// flavours, in a namespace network; flushes lbkit's rules from outside as
// an operator or a firewall reload does; and checks with real connections
// that traffic works again within one DriftCheckInterval (plus a margin for
// a loaded machine), with no change from the Tracker to prompt it. Chains
// another program adds are not a drift.
func TestKernelDriftRepair(t *testing.T) {
	for _, fl := range []iptables.Flavour{iptables.FlavourNFT, iptables.FlavourLegacy} {
		t.Run(string(fl), func(t *testing.T) { driftRepair(t, fl) })
	}
}

func driftRepair(t *testing.T, fl iptables.Flavour) {
	ipt := "iptables-" + string(fl)
	backendtest.Require(t, "ip", ipt, ipt+"-restore")
	const interval, margin = time.Second, 2 * time.Second
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 1})
	n.Serve(t, 8080)
	be := n.Pods()[0]
	vip := netip.MustParseAddrPort("10.96.0.10:80")

	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	tr.OnServiceAdd(servicemaptest.Service("t", "web", vip.Addr().String(), http80))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("t", "web", "web-1", http8080, []servicemaptest.Endpoint{servicemaptest.Ready(be.IP.String(), "node")}))

	var b countedDrift
	var err error
	if b.Backend, err = iptables.New(iptables.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}, iptables.Options{Flavour: fl}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var full []time.Time // starts of successful full syncs
	r := backends.NewRunner(tr, &b, backends.RunnerOptions{
		MinSyncInterval: 10 * time.Millisecond, DriftCheckInterval: interval, SyncPeriod: -1, NoWaitForSync: true,
		OnSync: func(res backends.SyncResult) {
			if res.Err != nil {
				t.Errorf("sync failed: %v", res.Err)
			}
			if res.Full && res.Err == nil {
				mu.Lock()
				full = append(full, res.Start)
				mu.Unlock()
			}
		},
	})
	fullSince := func(t0 time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(full) > 0 && full[len(full)-1].After(t0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.InNode(func() error { return r.Run(ctx) }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := n.InNode(func() error { return b.Cleanup(context.Background()) }); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	}()

	reach := func(timeout time.Duration) error {
		got, err := n.DialTCP(ctx, netip.Addr{}, vip, timeout)
		if err == nil && got != be.Name {
			err = fmt.Errorf("answered by %q, want %q", got, be.Name)
		}
		return err
	}
	waitReach := func(since time.Time, limit time.Duration) error {
		for {
			err := reach(200 * time.Millisecond)
			if err == nil || time.Since(since) > limit {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := waitReach(time.Now(), 10*time.Second); err != nil {
		t.Fatalf("service never worked: %v", err)
	}

	for _, breakage := range [][][]string{
		{{"-t", "nat", "-F"}},
		{{"-t", "nat", "-F"}, {"-t", "nat", "-X"}}, // what a firewall reload leaves
	} {
		var parts []string
		for _, args := range breakage {
			parts = append(parts, ipt+" "+strings.Join(args, " "))
		}
		what := strings.Join(parts, "; ")
		t.Run(what, func(t *testing.T) {
			broken := time.Now()
			for _, args := range breakage {
				if out, err := n.NodeExec(ipt, args...); err != nil {
					t.Fatalf("%s %v: %v\n%s", ipt, args, err, out)
				}
			}
			// Either the flush broke traffic, or a repair came first.
			if err := reach(300 * time.Millisecond); err == nil && !fullSince(broken) {
				t.Fatalf("traffic still works after %s, with no repair", what)
			}
			if err := waitReach(broken, interval+margin); err != nil {
				t.Fatalf("traffic not back %v after %s: %v", time.Since(broken).Round(time.Millisecond), what, err)
			}
			// The repair's restore can let traffic through a moment before
			// the Runner records the sync.
			for deadline := time.Now().Add(2 * time.Second); !fullSince(broken) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if !fullSince(broken) {
				t.Errorf("traffic works again, but no full sync ran")
			}
			t.Logf("traffic back %v after %s", time.Since(broken).Round(time.Millisecond), what)
		})
	}

	t.Run("foreign chain", func(t *testing.T) {
		before, checks, drifts := time.Now(), b.checks.Load(), b.drifts.Load()
		for i := range 3 {
			chain := fmt.Sprintf("FOREIGN-%d", i)
			for _, args := range [][]string{{"-t", "nat", "-N", chain}, {"-t", "nat", "-A", chain, "-j", "RETURN"}, {"-t", "filter", "-N", chain}} {
				if out, err := n.NodeExec(ipt, args...); err != nil {
					t.Fatalf("%s %v: %v\n%s", ipt, args, err, out)
				}
			}
			time.Sleep(interval)
		}
		time.Sleep(interval / 2)
		if got := b.checks.Load() - checks; got < 2 {
			t.Fatalf("%d drift checks in %v, want at least 2", got, time.Since(before))
		}
		if got := b.drifts.Load() - drifts; got != 0 || fullSince(before) {
			t.Errorf("another program's chains counted as %d drifts (full sync since: %v)", got, fullSince(before))
		}
	})
}
