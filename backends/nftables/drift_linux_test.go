//go:build linux

package nftables_test

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
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// countedDrift counts the drift checks and their answers.
type countedDrift struct {
	*nftables.Backend
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

// TestKernelDriftRepair runs a real Runner over the nftables backend in a
// namespace network, breaks lbkit's rules from outside in each way an
// operator or another program does, and checks with real connections that
// traffic works again within one DriftCheckInterval (plus a margin for a
// loaded machine), with no change from the Tracker to prompt it. A change
// to another program's table is not a drift.
func TestKernelDriftRepair(t *testing.T) {
	backendtest.Require(t, "ip", "nft")
	const interval, margin = time.Second, 2 * time.Second
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 1})
	n.Serve(t, 8080)
	be := n.Pods()[0]
	vip := netip.MustParseAddrPort("10.96.0.10:80")

	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	tr.OnServiceAdd(servicemaptest.Service("t", "web", vip.Addr().String(), tcp80))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("t", "web", "web-1", tcp8080, eps(servicemaptest.Ready(be.IP.String(), "node"))))

	var b countedDrift
	if err := n.InNode(func() error {
		var err error
		b.Backend, err = nftables.New(nftables.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}, nftables.Options{})
		return err
	}); err != nil {
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
	// waitReach polls until a connection works, up to limit after since.
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
	tables, err := n.NodeExec("nft", "list", "tables", "ip")
	if err != nil {
		t.Fatal(err)
	}
	var table string // the one shard table holding the service
	for _, f := range strings.Fields(tables) {
		if strings.HasPrefix(f, "lbkit") {
			table = f
		}
	}
	if table == "" {
		t.Fatalf("no lbkit table in:\n%s", tables)
	}

	for _, breakage := range [][]string{
		{"flush", "ruleset"},
		{"delete", "table", "ip", table},
		{"flush", "table", "ip", table},
		{"flush", "chain", "ip", table, "services"},
	} {
		what := strings.Join(breakage, " ")
		t.Run(what, func(t *testing.T) {
			broken := time.Now()
			if out, err := n.NodeExec("nft", breakage...); err != nil {
				t.Fatalf("nft %s: %v\n%s", what, err, out)
			}
			// Either the flush broke traffic, or a repair came first.
			if err := reach(300 * time.Millisecond); err == nil && !fullSince(broken) {
				t.Fatalf("traffic still works after nft %s, with no repair", what)
			}
			if err := waitReach(broken, interval+margin); err != nil {
				t.Fatalf("traffic not back %v after nft %s: %v", time.Since(broken).Round(time.Millisecond), what, err)
			}
			// The repair's commit can let traffic through a moment before
			// the Runner records the sync.
			for deadline := time.Now().Add(2 * time.Second); !fullSince(broken) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if !fullSince(broken) {
				t.Errorf("traffic works again, but no full sync ran")
			}
			t.Logf("traffic back %v after nft %s", time.Since(broken).Round(time.Millisecond), what)
		})
	}

	t.Run("foreign table", func(t *testing.T) {
		before, checks := time.Now(), b.checks.Load()
		drifts := b.drifts.Load()
		for i := range 3 {
			script := fmt.Sprintf("add table ip foreign; add chain ip foreign c%d; add rule ip foreign c%d counter", i, i)
			if out, err := n.NodeExec("nft", script); err != nil {
				t.Fatalf("nft: %v\n%s", err, out)
			}
			time.Sleep(interval)
		}
		time.Sleep(interval / 2)
		if got := b.checks.Load() - checks; got < 2 {
			t.Fatalf("%d drift checks in %v, want at least 2", got, time.Since(before))
		}
		if got := b.drifts.Load() - drifts; got != 0 || fullSince(before) {
			t.Errorf("changes to another table counted as %d drifts (full sync since: %v)", got, fullSince(before))
		}
		if out, err := n.NodeExec("nft", "delete", "table", "ip", "foreign"); err != nil {
			t.Errorf("nft delete table: %v\n%s", err, out)
		}
	})
}
