package backends_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/internal/testobj"
	"github.com/lbkit/lbkit/servicemap"
)

// env is a Runner driving a fake backend from a Tracker, running until the
// test ends.
type env struct {
	t  *testing.T
	tr *servicemap.Tracker
	b  *fake.Backend
	r  *backends.Runner

	mu      sync.Mutex
	results []backends.SyncResult
}

func start(t *testing.T, opts backends.RunnerOptions, fopts fake.Options) *env {
	t.Helper()
	e := &env{t: t, tr: servicemap.NewTracker(servicemap.Options{NodeName: "node-a"}), b: fake.New(fopts)}
	opts.OnSync = func(res backends.SyncResult) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.results = append(e.results, res)
	}
	e.r = backends.NewRunner(e.tr, e.b, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v, want nil after cancel", err)
		}
		e.checkNoEmptySyncs()
	})
	return e
}

// syncs returns the SyncResults so far.
func (e *env) syncs() []backends.SyncResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]backends.SyncResult(nil), e.results...)
}

// waitFor polls cond until it holds, failing the test after a deadline.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s; syncs: %+v", what, e.syncs())
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *env) waitForSyncs(n int) {
	e.t.Helper()
	e.waitFor(fmt.Sprintf("%d syncs", n), func() bool { return len(e.syncs()) >= n })
}

// converged reports whether the backend holds the tracker's latest snapshot.
func (e *env) converged() bool {
	snap := e.tr.Snapshot()
	return e.r.Health().SyncedVersion == snap.Version() && e.b.Dump() == fake.Render(snap)
}

// checkNoEmptySyncs checks that every incremental sync moved to a newer
// version: equal versions are only ever synced by a full sync.
func (e *env) checkNoEmptySyncs() {
	for _, s := range e.syncs() {
		if !s.Full && s.From >= s.To {
			e.t.Errorf("incremental sync from version %d to %d", s.From, s.To)
		}
	}
}

func service(i int) *v1.Service {
	return testobj.Service("default", fmt.Sprintf("svc-%d", i), fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
		[]v1.ServicePort{testobj.Port("http", 80, v1.ProtocolTCP)})
}

func status(r *backends.Runner) int {
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	return rec.Code
}

func TestRunnerWaitsForHasSynced(t *testing.T) {
	t.Parallel()
	var synced atomic.Bool
	var polls atomic.Int32
	e := start(t, backends.RunnerOptions{
		MinSyncInterval: 5 * time.Millisecond,
		HasSynced: []func() bool{
			func() bool { return true },
			func() bool { polls.Add(1); return synced.Load() },
		},
	}, fake.Options{})
	e.tr.OnServiceAdd(service(1))

	e.waitFor("HasSynced to be polled", func() bool { return polls.Load() >= 3 })
	if n := len(e.b.Syncs()); n != 0 {
		t.Fatalf("%d syncs before HasSynced returned true, want 0", n)
	}
	if h := e.r.Health(); h.Healthy || !h.Pending {
		t.Errorf("Health before the first sync = %+v, want unhealthy and pending", h)
	}

	synced.Store(true)
	e.waitForSyncs(1)
	if first := e.syncs()[0]; !first.Full || first.Err != nil || first.Changes != 1 {
		t.Errorf("first sync = %+v, want a successful full sync of 1 port", first)
	}
	e.waitFor("convergence", e.converged)
}

func TestRunnerCoalescesBursts(t *testing.T) {
	t.Parallel()
	e := start(t, backends.RunnerOptions{MinSyncInterval: 100 * time.Millisecond}, fake.Options{})
	e.waitForSyncs(1)

	for i := range 100 {
		e.tr.OnServiceAdd(service(i))
	}
	e.waitFor("convergence", e.converged)
	burst := e.syncs()[1:]
	if len(burst) > 3 {
		t.Errorf("a burst of 100 events made %d syncs, want at most 3: %+v", len(burst), burst)
	}
	if got := e.tr.Snapshot().Len(); got != 100 {
		t.Errorf("snapshot holds %d ports, want 100", got)
	}
}

func TestRunnerRespectsMinSyncInterval(t *testing.T) {
	t.Parallel()
	const interval = 20 * time.Millisecond
	e := start(t, backends.RunnerOptions{MinSyncInterval: interval, SyncPeriod: -1}, fake.Options{})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				e.tr.OnServiceAdd(service(i % 1000))
			}
		}
	})
	e.waitForSyncs(6)
	close(stop)
	wg.Wait()

	res := e.syncs()
	for i := 1; i < len(res); i++ {
		if gap := res[i].Start.Sub(res[i-1].Start); gap < interval {
			t.Errorf("sync %d started %v after sync %d, want at least %v", i, gap, i-1, interval)
		}
	}
	e.waitFor("convergence", e.converged)
}

// A change that arrives while the backend is busy is synced after it.
func TestRunnerKeepsUpdateDuringSlowSync(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	e := start(t, backends.RunnerOptions{MinSyncInterval: time.Millisecond, SyncPeriod: -1}, fake.Options{
		BeforeSync: func(ctx context.Context, _, _ *servicemap.Snapshot) error {
			if calls.Add(1) != 2 {
				return nil
			}
			close(entered)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		},
	})
	e.waitForSyncs(1)
	e.tr.OnServiceAdd(service(1))
	<-entered
	e.tr.OnServiceAdd(service(2))
	close(release)

	e.waitFor("convergence", e.converged)
	if !strings.Contains(e.b.Dump(), "default/svc-2:http") {
		t.Errorf("Dump() lacks the service added during the slow sync:\n%s", e.b.Dump())
	}
	res := e.syncs()
	if len(res) != 3 || res[2].Full || res[2].From != res[1].To {
		t.Errorf("syncs = %+v, want a third, incremental sync from the slow one's version", res)
	}
}

func TestRunnerRetriesFailuresAsFullSyncs(t *testing.T) {
	t.Parallel()
	const retryMin, retryMax = 10 * time.Millisecond, 40 * time.Millisecond
	var failures atomic.Int32
	e := start(t, backends.RunnerOptions{
		MinSyncInterval: time.Millisecond,
		SyncPeriod:      -1,
		RetryMin:        retryMin,
		RetryMax:        retryMax,
	}, fake.Options{
		BeforeSync: func(context.Context, *servicemap.Snapshot, *servicemap.Snapshot) error {
			if failures.Add(-1) >= 0 {
				return errors.New("kernel says no")
			}
			return nil
		},
	})
	e.waitForSyncs(1)

	failures.Store(4)
	e.tr.OnServiceAdd(service(1))
	e.waitForSyncs(2)
	if h := e.r.Health(); h.LastError == nil || !h.Pending || !errors.Is(h.LastError, backends.ErrApply) {
		t.Errorf("Health after a failure = %+v, want LastError wrapping ErrApply and pending", h)
	}
	e.waitFor("convergence", e.converged)

	res := e.syncs()
	if len(res) != 6 {
		t.Fatalf("got %d syncs, want 6 (initial, 4 failures, success): %+v", len(res), res)
	}
	wantBackoff := []time.Duration{retryMin, 2 * retryMin, retryMax, retryMax}
	for i, s := range res[1:5] {
		if s.Err == nil {
			t.Errorf("sync %d succeeded, want a failure", i+1)
		}
		if i > 0 && !s.Full {
			t.Errorf("retry %d was incremental, want full", i)
		}
		next := res[i+2]
		if wait := next.Start.Sub(s.Start.Add(s.Duration)); wait < wantBackoff[i] {
			t.Errorf("retry after failure %d waited %v, want at least %v", i+1, wait, wantBackoff[i])
		}
	}
	if last := res[5]; !last.Full || last.Err != nil {
		t.Errorf("final sync = %+v, want a successful full sync", last)
	}
	if h := e.r.Health(); h.LastError != nil || h.Pending || !h.Healthy {
		t.Errorf("Health after recovery = %+v, want healthy, no error", h)
	}

	// A success clears the backoff: the next change syncs incrementally,
	// without waiting.
	e.tr.OnServiceAdd(service(2))
	e.waitFor("convergence", e.converged)
	res = e.syncs()
	if last := res[len(res)-1]; last.Full || last.Err != nil {
		t.Errorf("sync after recovery = %+v, want a successful incremental sync", last)
	}
}

func TestRunnerFullSyncRepairsCorruption(t *testing.T) {
	t.Parallel()
	e := start(t, backends.RunnerOptions{MinSyncInterval: time.Millisecond, SyncPeriod: -1, RetryMin: time.Millisecond}, fake.Options{})
	e.tr.OnServiceAdd(service(1))
	e.waitFor("convergence", e.converged)
	name := servicemap.ServicePortName{Namespace: "default", Name: "svc-1", Port: "http", Protocol: v1.ProtocolTCP}
	if !e.b.Corrupt(name) {
		t.Fatal("Corrupt found nothing to remove")
	}
	// Changing the corrupted service makes the incremental sync fail; the
	// full retry repairs it.
	e.tr.OnServiceAdd(testobj.Service("default", "svc-1", "10.96.0.2", []v1.ServicePort{testobj.Port("http", 81, v1.ProtocolTCP)}))
	e.waitFor("convergence", e.converged)
	res := e.syncs()
	if n := len(res); n < 3 || res[n-2].Err == nil || !res[n-1].Full {
		t.Errorf("syncs = %+v, want a failure then a full sync", res)
	}
}

func TestRunnerPeriodicFullSync(t *testing.T) {
	t.Parallel()
	const period = 20 * time.Millisecond
	var ready atomic.Bool
	e := start(t, backends.RunnerOptions{MinSyncInterval: time.Millisecond, SyncPeriod: period, HasSynced: []func() bool{ready.Load}}, fake.Options{})
	e.tr.OnServiceAdd(service(1))
	ready.Store(true)
	e.waitForSyncs(3)
	res := e.syncs()[:3]
	for i, s := range res {
		if !s.Full || s.Err != nil || s.To != res[0].To {
			t.Errorf("sync %d = %+v, want a successful full sync of version %d", i, s, res[0].To)
		}
		if i > 0 {
			if gap := s.Start.Sub(res[i-1].Start); gap < period {
				t.Errorf("full sync %d came %v after the previous one, want at least %v", i, gap, period)
			}
		}
	}
}

// A change that cancels out before the Runner looks at it gives a snapshot of
// the same version, which is not synced.
func TestRunnerSkipsEqualVersions(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	e := start(t, backends.RunnerOptions{MinSyncInterval: time.Millisecond, SyncPeriod: -1}, fake.Options{
		BeforeSync: func(ctx context.Context, _, _ *servicemap.Snapshot) error {
			if calls.Add(1) == 1 {
				close(entered)
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return nil
		},
	})
	<-entered
	e.tr.OnServiceAdd(service(1))
	e.tr.OnServiceDelete(service(1))
	close(release)

	e.waitFor("the change to be handled", func() bool { h := e.r.Health(); return h.Healthy && !h.Pending })
	if res := e.syncs(); len(res) != 1 {
		t.Errorf("syncs = %+v, want only the first", res)
	}
}

func TestRunnerHealthz(t *testing.T) {
	t.Parallel()
	var synced, failing atomic.Bool
	e := start(t, backends.RunnerOptions{
		MinSyncInterval: time.Millisecond,
		SyncPeriod:      -1,
		RetryMin:        time.Millisecond,
		RetryMax:        5 * time.Millisecond,
		HealthTimeout:   50 * time.Millisecond,
		HasSynced:       []func() bool{synced.Load},
	}, fake.Options{
		BeforeSync: func(context.Context, *servicemap.Snapshot, *servicemap.Snapshot) error {
			if failing.Load() {
				return errors.New("table busy")
			}
			return nil
		},
	})
	if code := status(e.r); code != http.StatusServiceUnavailable {
		t.Errorf("/healthz before the first sync = %d, want 503", code)
	}
	synced.Store(true)
	e.waitFor("/healthz 200", func() bool { return status(e.r) == http.StatusOK })

	rec := httptest.NewRecorder()
	e.r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var body struct {
		Healthy       bool   `json:"healthy"`
		SyncedVersion uint64 `json:"syncedVersion"`
		LastError     string `json:"lastError"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if !body.Healthy || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("healthy response = %s %v", rec.Body, rec.Header())
	}

	failing.Store(true)
	e.tr.OnServiceAdd(service(1))
	e.waitFor("/healthz 503 while failing", func() bool { return status(e.r) == http.StatusServiceUnavailable })
	if h := e.r.Health(); h.LastError == nil || !strings.Contains(h.LastError.Error(), "table busy") {
		t.Errorf("Health while failing = %+v, want the backend's error", h)
	}

	failing.Store(false)
	e.waitFor("/healthz 200 after recovery", func() bool { return status(e.r) == http.StatusOK })
	e.waitFor("convergence", e.converged)
}

func TestRunnerRunTwice(t *testing.T) {
	t.Parallel()
	e := start(t, backends.RunnerOptions{}, fake.Options{})
	e.waitForSyncs(1)
	if err := e.r.Run(context.Background()); !errors.Is(err, backends.ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}
