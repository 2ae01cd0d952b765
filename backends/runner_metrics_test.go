package backends_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// wrapped is a backend wrapping the fake, as conntrack.WithCleanup wraps
// others: the Runner must still find the fake's Counter.
type wrapped struct{ backends.Interface }

func (w wrapped) Unwrap() backends.Interface { return w.Interface }

// TestRunnerMetrics checks the hooks of backends.Metrics: every sync
// reported, queued changes timed, Local-policy ports without a local
// endpoint counted (incrementally too), a wrapped backend's counts found,
// a drift reported, and /healthz requests counted.
func TestRunnerMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var synced []backends.SyncResult
		var queued int
		var noLocal [2]int
		var programmed map[string]int
		var drifts int
		var served []int
		m := &backends.Metrics{
			Synced:           func(r backends.SyncResult) { mu.Lock(); synced = append(synced, r); mu.Unlock() },
			Queued:           func(time.Time) { mu.Lock(); queued++; mu.Unlock() },
			NoLocalEndpoints: func(i, e int) { mu.Lock(); noLocal = [2]int{i, e}; mu.Unlock() },
			Programmed:       func(_ string, c map[string]int) { mu.Lock(); programmed = c; mu.Unlock() },
			Drift:            func(string) { mu.Lock(); drifts++; mu.Unlock() },
			Served:           func(_ string, code int) { mu.Lock(); served = append(served, code); mu.Unlock() },
		}
		tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
		sp := []discoveryv1.EndpointPort{servicemaptest.SlicePort("p", 8080, v1.ProtocolTCP)}
		local := func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = servicemaptest.Ptr(v1.ServiceInternalTrafficPolicyLocal)
		}
		tr.OnServiceAdd(servicemaptest.Service("ns", "a", "10.96.0.1", []v1.ServicePort{servicemaptest.Port("p", 80, v1.ProtocolTCP)}, local))
		tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "a", "a-1", sp, []servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.1", "node-b")}))
		b := fake.New(fake.Options{})
		r := backends.NewRunner(tr, wrapped{b}, backends.RunnerOptions{
			NoWaitForSync: true, MinSyncInterval: time.Second, DriftCheckInterval: 10 * time.Second, Metrics: m,
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait()

		check := func(what string, wantSyncs, wantNoLocal int, wantPorts int) {
			t.Helper()
			mu.Lock()
			defer mu.Unlock()
			if len(synced) != wantSyncs || noLocal[0] != wantNoLocal || programmed["service-ports"] != wantPorts {
				t.Errorf("%s: %d syncs, no-local %v, programmed %v; want %d syncs, %d internal no-local, %d ports",
					what, len(synced), noLocal, programmed, wantSyncs, wantNoLocal, wantPorts)
			}
		}
		check("after the first sync", 1, 1, 1)

		// A second Local port without a local endpoint, incrementally.
		tr.OnServiceAdd(servicemaptest.Service("ns", "b", "10.96.0.2", []v1.ServicePort{servicemaptest.Port("p", 80, v1.ProtocolTCP)}, local))
		tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "b", "b-1", sp, []servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.2", "node-b")}))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		check("after an incremental sync", 2, 2, 2)
		mu.Lock()
		if queued == 0 || synced[1].Full {
			t.Errorf("queued %d times, second sync full=%v; want queued, incremental", queued, synced[1].Full)
		}
		mu.Unlock()

		// The first gets a local endpoint: one left.
		tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("ns", "a", "a-1", sp, []servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.1", "node-a")}))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		check("after a local endpoint appeared", 3, 1, 2)

		b.Corrupt(servicemap.ServicePortName{Namespace: "ns", Name: "a", Port: "p", Protocol: v1.ProtocolTCP})
		time.Sleep(12 * time.Second)
		synctest.Wait()
		mu.Lock()
		if drifts != 1 {
			t.Errorf("%d drifts reported, want 1", drifts)
		}
		mu.Unlock()

		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		mu.Lock()
		if len(served) != 1 || served[0] != http.StatusOK {
			t.Errorf("served %v, want one 200", served)
		}
		mu.Unlock()
		cancel()
		<-done
	})
}

// TestRunnerQueuedAtStart: as kube-proxy's SyncLoop, which sets
// sync_proxy_rules_last_queued_timestamp_seconds when it starts, Run
// reports a queued sync before its first one even when no change arrives,
// so that the queued time runs ahead of a first sync that never ends.
func TestRunnerQueuedAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var queued []time.Time
		var synced []backends.SyncResult
		m := &backends.Metrics{
			Queued: func(at time.Time) { mu.Lock(); queued = append(queued, at); mu.Unlock() },
			Synced: func(r backends.SyncResult) { mu.Lock(); synced = append(synced, r); mu.Unlock() },
		}
		tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
		r := backends.NewRunner(tr, fake.New(fake.Options{}), backends.RunnerOptions{NoWaitForSync: true, Metrics: m})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait()
		mu.Lock()
		if len(queued) != 1 || len(synced) != 1 || queued[0].After(synced[0].Start) {
			t.Errorf("queued at %v, synced %+v; want one queued time, not after the one sync's start", queued, synced)
		}
		mu.Unlock()
		cancel()
		<-done
	})
}
