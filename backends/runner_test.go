package backends_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// Every Runner test runs in a synctest bubble: time is fake, and advances
// only when every goroutine of the test waits, so what the tests assert of
// intervals and timeouts holds exactly, however loaded the machine.

// env is a Runner driving a fake backend from a Tracker.
type env struct {
	t      *testing.T
	tr     *servicemap.Tracker
	b      *fake.Backend
	r      *backends.Runner
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	results []backends.SyncResult
	logs    bytes.Buffer
}

// runnerTest runs body in a bubble with a Runner started on a new Tracker
// and fake backend, then stops the Runner and checks that Run returned nil.
// Unless opts has HasSynced, NoWaitForSync is set. fopts, when not nil,
// makes the fake's options inside the bubble: channels its hooks block on
// must belong to the bubble for fake time to pass while they wait.
func runnerTest(t *testing.T, opts backends.RunnerOptions, fopts func() fake.Options, body func(t *testing.T, e *env)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		var fo fake.Options
		if fopts != nil {
			fo = fopts()
		}
		e := newEnv(t, opts, fo)
		e.start()
		defer e.stop()
		body(t, e)
	})
}

func newEnv(t *testing.T, opts backends.RunnerOptions, fopts fake.Options) *env {
	e := &env{t: t, tr: servicemap.NewTracker(servicemap.Options{NodeName: "node-a"}), b: fake.New(fopts)}
	if len(opts.HasSynced) == 0 {
		opts.NoWaitForSync = true
	}
	opts.OnSync = func(res backends.SyncResult) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.results = append(e.results, res)
	}
	opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{e}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.r = backends.NewRunner(e.tr, e.b, opts)
	return e
}

type lockedWriter struct{ e *env }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.e.mu.Lock()
	defer w.e.mu.Unlock()
	return w.e.logs.Write(p)
}

func (e *env) start() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- e.r.Run(ctx) }()
	synctest.Wait()
}

// stop cancels Run, waits for it and checks the syncs' invariants.
func (e *env) stop() {
	e.cancel()
	if err := <-e.done; err != nil {
		e.t.Errorf("Run returned %v, want nil after cancel", err)
	}
	for _, s := range e.syncs() {
		if !s.Full && s.From >= s.To {
			e.t.Errorf("incremental sync from version %d to %d", s.From, s.To)
		}
	}
}

// after lets d of fake time pass, then waits until every goroutine of the
// test is blocked again.
func after(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// syncs returns the SyncResults so far.
func (e *env) syncs() []backends.SyncResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]backends.SyncResult(nil), e.results...)
}

func (e *env) log() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.String()
}

// converged reports whether the backend holds the tracker's latest snapshot.
func (e *env) converged() bool {
	snap := e.tr.Snapshot()
	return e.r.Health().SyncedVersion == snap.Version() && e.b.Dump() == fake.Render(snap)
}

func (e *env) mustConverge(what string) {
	e.t.Helper()
	if !e.converged() {
		e.t.Fatalf("%s: backend not at the latest snapshot (version %d, synced %d); syncs: %+v\n%s",
			what, e.tr.Snapshot().Version(), e.r.Health().SyncedVersion, e.syncs(), e.b.Dump())
	}
}

func service(i int) *v1.Service {
	return servicemaptest.Service("default", fmt.Sprintf("svc-%d", i), fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
		[]v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)})
}

func TestRunnerRequiresHasSynced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := servicemap.NewTracker(servicemap.Options{})
		b := fake.New(fake.Options{})
		r := backends.NewRunner(tr, b, backends.RunnerOptions{})
		if err := r.Run(context.Background()); !errors.Is(err, backends.ErrNoHasSynced) {
			t.Fatalf("Run without HasSynced or NoWaitForSync = %v, want ErrNoHasSynced", err)
		}
		if n := len(b.Syncs()); n != 0 {
			t.Errorf("%d syncs, want none", n)
		}
		if h := r.Health(); h.Healthy || h.State != backends.StateStopped {
			t.Errorf("Health = %+v, want stopped", h)
		}
	})
}

func TestRunnerWaitsForHasSynced(t *testing.T) {
	var synced atomic.Bool
	var polls atomic.Int32
	opts := backends.RunnerOptions{
		MinSyncInterval: 5 * time.Millisecond,
		HasSynced: []func() bool{
			func() bool { return true },
			func() bool { polls.Add(1); return synced.Load() },
		},
	}
	runnerTest(t, opts, nil, func(t *testing.T, e *env) {
		e.tr.OnServiceAdd(service(1))
		after(time.Second)
		if polls.Load() < 3 {
			t.Fatalf("HasSynced polled %d times in a second", polls.Load())
		}
		if n := len(e.b.Syncs()); n != 0 {
			t.Fatalf("%d syncs before HasSynced returned true, want 0", n)
		}
		if h := e.r.Health(); h.Healthy || !h.Pending || h.State != backends.StateStarting {
			t.Errorf("Health before the first sync = %+v, want starting, unhealthy and pending", h)
		}

		synced.Store(true)
		after(100 * time.Millisecond)
		res := e.syncs()
		if len(res) != 1 || !res[0].Full || res[0].Err != nil || res[0].Changes != 1 {
			t.Errorf("syncs = %+v, want one successful full sync of 1 port", res)
		}
		e.mustConverge("after HasSynced")
	})
}

func TestRunnerCoalescesBursts(t *testing.T) {
	runnerTest(t, backends.RunnerOptions{MinSyncInterval: 100 * time.Millisecond}, nil, func(t *testing.T, e *env) {
		for i := range 100 {
			e.tr.OnServiceAdd(service(i))
			time.Sleep(time.Millisecond)
		}
		after(100 * time.Millisecond)
		e.mustConverge("after the burst")
		// The first sync at 0 s took the first event; the burst's other
		// 99 events, spread over 100 ms, go into one sync at 100 ms.
		if burst := e.syncs()[1:]; len(burst) != 1 || burst[0].Start.Sub(e.syncs()[0].Start) != 100*time.Millisecond {
			t.Errorf("a burst of 100 events made syncs %+v, want one, at 100ms", burst)
		}
	})
}

func TestRunnerRespectsMinSyncInterval(t *testing.T) {
	const interval = 20 * time.Millisecond
	runnerTest(t, backends.RunnerOptions{MinSyncInterval: interval, SyncPeriod: -1}, nil, func(t *testing.T, e *env) {
		for i := range 200 {
			e.tr.OnServiceAdd(service(i))
			time.Sleep(time.Millisecond)
		}
		after(interval)
		res := e.syncs()
		if len(res) < 9 {
			t.Fatalf("%d syncs in 200 ms of changes, want about 10: %+v", len(res), res)
		}
		for i := 1; i < len(res); i++ {
			if gap := res[i].Start.Sub(res[i-1].Start); gap < interval {
				t.Errorf("sync %d started %v after sync %d, want at least %v", i, gap, i-1, interval)
			}
		}
		e.mustConverge("after the changes")
	})
}

// A change that arrives while the backend is busy is synced after it.
func TestRunnerKeepsUpdateDuringSlowSync(t *testing.T) {
	var entered, release chan struct{}
	var calls atomic.Int32
	slow := func() fake.Options {
		entered, release = make(chan struct{}, 1), make(chan struct{})
		return fake.Options{BeforeSync: func(ctx context.Context, _, _ *servicemap.Snapshot) error {
			if calls.Add(1) != 2 {
				return nil
			}
			entered <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}}
	}
	runnerTest(t, backends.RunnerOptions{MinSyncInterval: time.Millisecond, SyncPeriod: -1}, slow, func(t *testing.T, e *env) {
		e.tr.OnServiceAdd(service(1))
		<-entered
		e.tr.OnServiceAdd(service(2))
		after(time.Second)
		close(release)
		after(time.Second)

		e.mustConverge("after the slow sync")
		res := e.syncs()
		if len(res) != 3 || res[2].Full || res[2].From != res[1].To {
			t.Errorf("syncs = %+v, want a third, incremental sync from the slow one's version", res)
		}
	})
}

func TestRunnerRetriesFailuresAsFullSyncs(t *testing.T) {
	const retryMin, retryMax = 10 * time.Millisecond, 40 * time.Millisecond
	var failures atomic.Int32
	opts := backends.RunnerOptions{MinSyncInterval: time.Millisecond, SyncPeriod: -1, RetryMin: retryMin, RetryMax: retryMax}
	failing := func() fake.Options {
		return fake.Options{BeforeSync: func(context.Context, *servicemap.Snapshot, *servicemap.Snapshot) error {
			if failures.Add(-1) >= 0 {
				return errors.New("kernel says no")
			}
			return nil
		}}
	}
	runnerTest(t, opts, failing, func(t *testing.T, e *env) {
		failures.Store(4)
		e.tr.OnServiceAdd(service(1))
		after(time.Millisecond)
		if h := e.r.Health(); !errors.Is(h.LastError, backends.ErrApply) || !h.Pending || h.ErrorClass != backends.ClassApply {
			t.Errorf("Health after a failure = %+v, want LastError wrapping ErrApply, class apply, pending", h)
		}
		after(time.Second)
		e.mustConverge("after the retries")

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
			if wait := next.Start.Sub(s.Start.Add(s.Duration)); wait != wantBackoff[i] {
				t.Errorf("retry after failure %d waited %v, want %v", i+1, wait, wantBackoff[i])
			}
		}
		if last := res[5]; !last.Full || last.Err != nil {
			t.Errorf("final sync = %+v, want a successful full sync", last)
		}
		if h := e.r.Health(); h.LastError != nil || h.Pending || !h.Healthy {
			t.Errorf("Health after recovery = %+v, want healthy, no error", h)
		}

		// A success clears the backoff: the next change syncs
		// incrementally, without waiting.
		e.tr.OnServiceAdd(service(2))
		after(time.Millisecond)
		e.mustConverge("after the next change")
		res = e.syncs()
		if last := res[len(res)-1]; last.Full || last.Err != nil {
			t.Errorf("sync after recovery = %+v, want a successful incremental sync", last)
		}
	})
}

func TestRunnerFullSyncRepairsCorruption(t *testing.T) {
	opts := backends.RunnerOptions{MinSyncInterval: time.Millisecond, SyncPeriod: -1, RetryMin: time.Millisecond, DriftCheckInterval: -1}
	runnerTest(t, opts, nil, func(t *testing.T, e *env) {
		e.tr.OnServiceAdd(service(1))
		after(time.Millisecond)
		e.mustConverge("before the corruption")
		name := servicemap.ServicePortName{Namespace: "default", Name: "svc-1", Port: "http", Protocol: v1.ProtocolTCP}
		if !e.b.Corrupt(name) {
			t.Fatal("Corrupt found nothing to remove")
		}
		// Changing the corrupted service makes the incremental sync fail;
		// the full retry repairs it.
		e.tr.OnServiceAdd(servicemaptest.Service("default", "svc-1", "10.96.0.2", []v1.ServicePort{servicemaptest.Port("http", 81, v1.ProtocolTCP)}))
		after(100 * time.Millisecond)
		e.mustConverge("after the retry")
		res := e.syncs()
		if n := len(res); n < 3 || res[n-2].Err == nil || !res[n-1].Full {
			t.Errorf("syncs = %+v, want a failure then a full sync", res)
		}
	})
}

func TestRunnerPeriodicFullSync(t *testing.T) {
	const period = 20 * time.Millisecond
	var ready atomic.Bool
	opts := backends.RunnerOptions{MinSyncInterval: time.Millisecond, SyncPeriod: period, HasSynced: []func() bool{ready.Load}}
	runnerTest(t, opts, nil, func(t *testing.T, e *env) {
		e.tr.OnServiceAdd(service(1))
		ready.Store(true)
		after(period*2 + period/2)
		res := e.syncs()
		if len(res) != 3 {
			t.Fatalf("syncs = %+v, want 3", res)
		}
		for i, s := range res {
			if !s.Full || s.Err != nil || s.To != res[0].To {
				t.Errorf("sync %d = %+v, want a successful full sync of version %d", i, s, res[0].To)
			}
			if gap := s.Start.Sub(res[0].Start); gap != time.Duration(i)*period {
				t.Errorf("full sync %d came %v after the first, want %v", i, gap, time.Duration(i)*period)
			}
		}
	})
}

// A change that cancels out before the Runner looks at it gives a snapshot
// of the same version, which is not synced.
func TestRunnerSkipsEqualVersions(t *testing.T) {
	var entered, release chan struct{}
	var calls atomic.Int32
	slowFirst := func() fake.Options {
		entered, release = make(chan struct{}, 1), make(chan struct{})
		return fake.Options{BeforeSync: func(ctx context.Context, _, _ *servicemap.Snapshot) error {
			if calls.Add(1) == 1 {
				entered <- struct{}{}
				<-release
			}
			return nil
		}}
	}
	runnerTest(t, backends.RunnerOptions{MinSyncInterval: time.Millisecond, SyncPeriod: -1}, slowFirst, func(t *testing.T, e *env) {
		<-entered
		e.tr.OnServiceAdd(service(1))
		e.tr.OnServiceDelete(service(1))
		close(release)
		after(time.Second)
		if h := e.r.Health(); !h.Healthy || h.Pending {
			t.Errorf("Health = %+v, want healthy, nothing pending", h)
		}
		if res := e.syncs(); len(res) != 1 {
			t.Errorf("syncs = %+v, want only the first", res)
		}
	})
}

// The Runner computes the Diff of an incremental sync once and hands it
// to a backend that takes it.
func TestRunnerPassesTheDiff(t *testing.T) {
	runnerTest(t, backends.RunnerOptions{MinSyncInterval: time.Millisecond}, nil, func(t *testing.T, e *env) {
		e.tr.OnServiceAdd(service(1))
		after(time.Millisecond)
		e.tr.OnServiceAdd(service(2))
		after(time.Millisecond)
		e.mustConverge("after two changes")
		recs := e.b.Syncs()
		if len(recs) != 3 || recs[0].Given || !recs[1].Given || !recs[2].Given {
			t.Errorf("fake's records = %+v, want a full sync then two incremental ones given the Diff", recs)
		}
	})
}

func TestRunnerRunTwice(t *testing.T) {
	runnerTest(t, backends.RunnerOptions{}, nil, func(t *testing.T, e *env) {
		if err := e.r.Run(context.Background()); !errors.Is(err, backends.ErrRunning) {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}
	})
}

// Two other subscribers and the Runner on one Tracker: each sees each of
// 20 changes, and an idle subscriber holds up nobody.
func TestRunnerSharesTheTracker(t *testing.T) {
	runnerTest(t, backends.RunnerOptions{MinSyncInterval: 10 * time.Millisecond}, nil, func(t *testing.T, e *env) {
		a, cancelA := e.tr.Subscribe()
		defer cancelA()
		b, cancelB := e.tr.Subscribe()
		defer cancelB()
		_, cancelIdle := e.tr.Subscribe() // never read
		defer cancelIdle()
		seen := map[string]int{}
		for i := range 20 {
			e.tr.OnServiceAdd(service(i))
			for name, ch := range map[string]<-chan struct{}{"a": a, "b": b} {
				select {
				case <-ch:
					seen[name]++
				default:
				}
			}
			after(10 * time.Millisecond)
			e.mustConverge(fmt.Sprintf("after change %d", i))
		}
		if seen["a"] != 20 || seen["b"] != 20 {
			t.Errorf("subscribers saw %v of 20 changes, want all", seen)
		}
	})
}

// status serves /healthz and decodes the answer.
func status(t *testing.T, r *backends.Runner) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	return rec.Code, body
}
