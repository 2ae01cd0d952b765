//go:build linux

package iptables_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// TestKubernetes7370XtablesLockHeld (kubernetes#7370, #57428): another
// program holds the xtables lock while lbkit must sync (the legacy
// flavour takes it for every restore). The sync must give up within its
// lock wait, well inside the Runner's SyncTimeout, with an error that says
// timeout; the data plane keeps the last good state meanwhile; /healthz
// turns 503 once the change has waited HealthTimeout; and once the lock is
// free the retry, a full sync, programs the change: real connections reach
// the new endpoint. The lock is a file of this test's own
// (XTABLES_LOCKFILE, which iptables reads), so no other iptables user on
// the host is held up.
func TestKubernetes7370XtablesLockHeld(t *testing.T) {
	backendtest.Require(t, "ip", "iptables-legacy-restore", "iptables-legacy-save")
	lockPath := filepath.Join(t.TempDir(), "xtables.lock")
	t.Setenv("XTABLES_LOCKFILE", lockPath)
	const (
		lockWait      = time.Second
		syncTimeout   = 5 * time.Second
		healthTimeout = 1500 * time.Millisecond
		hold          = 3 * time.Second
	)

	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{})
	n.Serve(t, 8080)
	bes := n.Pods()
	vip := netip.MustParseAddrPort("10.96.0.70:80")
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	ports := []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)}
	tr.OnServiceAdd(servicemaptest.Service("t", "web", vip.Addr().String(), []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	setEndpoint := func(b backendtest.Pod) {
		tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("t", "web", "web-1", ports, []servicemaptest.Endpoint{servicemaptest.Ready(b.IP.String(), "node")}))
	}
	setEndpoint(bes[0])

	var b *iptables.Backend
	if err := n.InNode(func() error {
		var err error
		b, err = iptables.New(iptables.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}, iptables.Options{Flavour: iptables.FlavourLegacy, LockWait: lockWait})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer n.InNode(func() error { return b.Cleanup(context.Background()) })

	results := make(chan backends.SyncResult, 100)
	r := backends.NewRunner(tr, b, backends.RunnerOptions{
		NoWaitForSync: true, MinSyncInterval: 10 * time.Millisecond,
		RetryMin: 200 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		SyncTimeout: syncTimeout, HealthTimeout: healthTimeout,
		OnSync: func(res backends.SyncResult) { results <- res },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// The Runner calls the backend from Run's goroutine: run it in the node.
	go func() { done <- n.InNode(func() error { return r.Run(ctx) }) }()
	defer func() { cancel(); <-done }()

	next := func(why string) backends.SyncResult {
		t.Helper()
		select {
		case res := <-results:
			return res
		case <-time.After(syncTimeout + time.Second):
			t.Fatalf("%s: no sync within %v", why, syncTimeout+time.Second)
			return backends.SyncResult{}
		}
	}
	healthz := func() int {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return rec.Code
	}
	reach := func(want string, why string) {
		t.Helper()
		for i := range 10 {
			got, err := n.DialTCP(t.Context(), netip.Addr{}, vip, 2*time.Second)
			if err != nil || got != want {
				t.Fatalf("%s: connection %d to %v: %q, %v; want %q", why, i+1, vip, got, err, want)
			}
		}
	}

	if res := next("first sync"); res.Err != nil {
		t.Fatalf("first sync: %v", res.Err)
	}
	reach(bes[0].Name, "after the first sync")

	// Someone else takes the lock; then the endpoint changes.
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	held := time.Now()
	setEndpoint(bes[1])

	res := next("sync while the lock is held")
	if res.Err == nil {
		t.Fatalf("sync while another program holds the xtables lock succeeded")
	}
	if !errors.Is(res.Err, backends.ErrTimeout) {
		t.Errorf("sync while the lock is held failed with %v; want an error that Is backends.ErrTimeout", res.Err)
	}
	if res.Duration < lockWait || res.Duration > lockWait+time.Second {
		t.Errorf("sync while the lock is held took %v; want it to give up after the lock wait %v, well inside SyncTimeout %v", res.Duration, lockWait, syncTimeout)
	}
	t.Logf("sync while the lock is held failed after %v: %v", res.Duration.Round(time.Millisecond), res.Err)
	reach(bes[0].Name, "while the lock is held (the last good state stays)")

	// /healthz turns 503 once the change has waited HealthTimeout.
	for healthz() != http.StatusServiceUnavailable {
		if time.Since(held) > healthTimeout+time.Second {
			t.Fatalf("/healthz still %d %v after the lock was taken; want 503 after HealthTimeout %v", healthz(), time.Since(held).Round(time.Millisecond), healthTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if since := time.Since(held); since < healthTimeout {
		t.Errorf("/healthz 503 after %v, before HealthTimeout %v", since, healthTimeout)
	}

	// Release the lock after hold; drain the failed retries until a sync
	// succeeds.
	time.Sleep(time.Until(held.Add(hold)))
	if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	for {
		res := next("retry after the lock is free")
		if res.Err != nil {
			if res.Start.After(released) {
				t.Fatalf("a sync that started after the lock was freed: %v", res.Err)
			}
			continue // it ran while the lock was held
		}
		if end := res.Start.Add(res.Duration); end.Before(released) {
			t.Fatalf("a sync succeeded at %v, before the lock was freed", end)
		}
		if !res.Full {
			t.Errorf("first sync after failures was incremental; want a full sync")
		}
		break
	}
	reach(bes[1].Name, "after the lock is free")
	if code := healthz(); code != http.StatusOK {
		t.Errorf("/healthz %d after a good sync; want 200", code)
	}
}
