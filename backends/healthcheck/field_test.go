package healthcheck_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/backends/healthcheck"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// TestKubernetes115825HealthCheckFollowsProxyHealth: a cloud load balancer
// probes the healthCheckNodePort of an externalTrafficPolicy=Local service.
// It must read 503 while the node's proxy has not programmed the data plane
// (kubernetes#115825, #134648), not only when the node has no local
// endpoint; /healthz says the same for the node, while /livez (KEP-3836)
// only says whether the proxy's loop turns, so a proxy waiting for its first
// sync or retrying failures is not restarted by its liveness probe, but one
// stuck in a backend call is.
func TestKubernetes115825HealthCheckFollowsProxyHealth(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	tr.OnServiceAdd(localService("web", "10.96.0.10", 32000))
	tr.OnEndpointSliceAdd(slice("web", servicemaptest.Ready("10.244.1.5", node)))

	release := make(chan struct{})
	hang := make(chan struct{})
	b := fake.New(fake.Options{BeforeSync: func(ctx context.Context, prev, next *servicemap.Snapshot) error {
		select {
		case <-release: // the first sync waits for this
		case <-hang:
			time.Sleep(2 * time.Second) // a stuck kernel call, ignoring ctx
		}
		return nil
	}})
	r := backends.NewRunner(tr, b, backends.RunnerOptions{
		NoWaitForSync: true, MinSyncInterval: 10 * time.Millisecond, SyncTimeout: 300 * time.Millisecond,
		HealthTimeout: 200 * time.Millisecond,
	})
	s, lb := newServer(t, healthcheck.Options{ProxyHealthy: func() bool { return r.Health().Healthy }})
	mustSync(t, s, tr.Snapshot())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); close(release); <-done }()

	code := func(h http.Handler) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		return rec.Code
	}
	expect := func(when string, hc, healthz, livez int) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			got := [3]int{get(t, lb.url(t, ":32000")).code, code(r), code(r.Livez())}
			if got == [3]int{hc, healthz, livez} {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: health-check port %d, /healthz %d, /livez %d; want %d, %d, %d", when, got[0], got[1], got[2], hc, healthz, livez)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The first sync has not happened: the port has a local endpoint, yet
	// the data plane is not programmed.
	expect("before the first sync", http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusOK)
	release <- struct{}{}
	expect("after the first sync", http.StatusOK, http.StatusOK, http.StatusOK)

	// The next sync hangs past SyncTimeout: nothing is being programmed and
	// the loop does not turn.
	go func() { close(hang) }()
	tr.OnEndpointSliceUpdate(nil, slice("web", servicemaptest.Ready("10.244.1.5", node), servicemaptest.Ready("10.244.1.6", node)))
	expect("with a sync stuck past its deadline", http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusServiceUnavailable)
}
