package backends_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/servicemap"
)

func TestRunnerHealthz(t *testing.T) {
	var synced, failing atomic.Bool
	opts := backends.RunnerOptions{
		MinSyncInterval: time.Millisecond,
		SyncPeriod:      -1,
		RetryMin:        time.Millisecond,
		RetryMax:        5 * time.Millisecond,
		HealthTimeout:   50 * time.Millisecond,
		HasSynced:       []func() bool{synced.Load},
	}
	secret := "table busy: rule for 10.96.0.1 refused"
	fopts := func() fake.Options {
		return fake.Options{BeforeSync: func(context.Context, *servicemap.Snapshot, *servicemap.Snapshot) error {
			if failing.Load() {
				return errors.New(secret)
			}
			return nil
		}}
	}
	runnerTest(t, opts, fopts, func(t *testing.T, e *env) {
		if code, body := status(t, e.r); code != http.StatusServiceUnavailable || body["state"] != "starting" {
			t.Errorf("/healthz before the first sync = %d %v, want 503, starting", code, body)
		}
		synced.Store(true)
		after(time.Second)
		if code, body := status(t, e.r); code != http.StatusOK || body["state"] != "healthy" || body["healthy"] != true {
			t.Errorf("/healthz after the first sync = %d %v, want 200, healthy", code, body)
		}

		failing.Store(true)
		e.tr.OnServiceAdd(service(1))
		after(49 * time.Millisecond)
		if code, body := status(t, e.r); code != http.StatusOK || body["error"] != "apply" {
			t.Errorf("/healthz 49ms into failures = %d %v, want 200 with error class apply", code, body)
		}
		after(time.Millisecond)
		code, body := status(t, e.r)
		if code != http.StatusServiceUnavailable || body["state"] != "stale" || body["error"] != "apply" || body["pending"] != true {
			t.Errorf("/healthz after HealthTimeout of failures = %d %v, want 503, stale, error apply, pending", code, body)
		}
		for k, v := range body {
			if s, ok := v.(string); ok && strings.Contains(s, "10.96.0.1") {
				t.Errorf("/healthz shows the backend's error text in %q: %q", k, s)
			}
		}
		if h := e.r.Health(); h.LastError == nil || !strings.Contains(h.LastError.Error(), secret) {
			t.Errorf("Health().LastError = %v, want the backend's error for the logs", h.LastError)
		}
		if !strings.Contains(e.log(), secret) {
			t.Errorf("the log lacks the backend's error:\n%s", e.log())
		}

		failing.Store(false)
		after(10 * time.Millisecond)
		if code, body := status(t, e.r); code != http.StatusOK || body["error"] != nil {
			t.Errorf("/healthz after recovery = %d %v, want 200, no error", code, body)
		}
		e.mustConverge("after recovery")
	})
}

// After Run returns, /healthz says 503 ("stopped"); a new Run starts
// health afresh.
func TestRunnerUnhealthyAfterRunReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, backends.RunnerOptions{}, fake.Options{})
		if h := e.r.Health(); h.Healthy || h.State != backends.StateStopped {
			t.Errorf("Health before Run = %+v, want stopped", h)
		}
		e.start()
		if code, _ := status(t, e.r); code != http.StatusOK {
			t.Fatalf("/healthz while running = %d, want 200", code)
		}
		e.stop()
		if code, body := status(t, e.r); code != http.StatusServiceUnavailable || body["state"] != "stopped" {
			t.Errorf("/healthz after Run returned = %d %v, want 503, stopped", code, body)
		}
		after(time.Hour)
		if code, _ := status(t, e.r); code != http.StatusServiceUnavailable {
			t.Errorf("/healthz an hour after Run returned = %d, want 503", code)
		}

		e.tr.OnServiceAdd(service(1))
		e.start()
		defer e.stop()
		if h := e.r.Health(); !h.Healthy || h.SyncedVersion != e.tr.Snapshot().Version() {
			t.Errorf("Health after a second Run's first sync = %+v, want healthy at version %d", h, e.tr.Snapshot().Version())
		}
		if res := e.syncs(); !res[len(res)-1].Full {
			t.Errorf("second Run's first sync = %+v, want full", res[len(res)-1])
		}
	})
}

// A periodic full sync that hangs, ignoring its context: a change that
// arrives meanwhile is pending from when the Tracker made it, so /healthz
// turns 503 one HealthTimeout later; once the sync overruns SyncTimeout the
// class says timeout. When the sync returns, the change is synced.
func TestRunnerHungSyncTurnsUnhealthy(t *testing.T) {
	const (
		period        = time.Minute
		healthTimeout = time.Second
		syncTimeout   = 30 * time.Second
	)
	var release chan struct{}
	var calls atomic.Int32
	hang := func() fake.Options {
		release = make(chan struct{})
		return fake.Options{BeforeSync: func(context.Context, *servicemap.Snapshot, *servicemap.Snapshot) error {
			if calls.Add(1) == 2 {
				<-release // a stuck kernel call: the context is ignored
			}
			return nil
		}}
	}
	opts := backends.RunnerOptions{MinSyncInterval: 10 * time.Millisecond, SyncPeriod: period, HealthTimeout: healthTimeout, SyncTimeout: syncTimeout}
	runnerTest(t, opts, hang, func(t *testing.T, e *env) {
		after(period + 5*time.Second) // the periodic sync started at 1m and hangs
		if h := e.r.Health(); !h.Healthy || h.BusySince.IsZero() {
			t.Fatalf("Health during a hung sync with nothing pending = %+v, want healthy, busy", h)
		}
		changed := time.Now()
		e.tr.OnServiceAdd(service(1))
		synctest.Wait()
		if h := e.r.Health(); !h.Pending || !h.PendingSince.Equal(changed) {
			t.Errorf("Health after a change during the hung sync = %+v, want pending since %v", h, changed)
		}
		after(healthTimeout - time.Millisecond)
		if code, _ := status(t, e.r); code != http.StatusOK {
			t.Errorf("/healthz just before HealthTimeout = %d, want 200", code)
		}
		after(time.Millisecond)
		if code, body := status(t, e.r); code != http.StatusServiceUnavailable || body["state"] != "stale" {
			t.Errorf("/healthz HealthTimeout after the change = %d %v, want 503, stale", code, body)
		}
		after(syncTimeout)
		if h := e.r.Health(); h.Healthy || h.ErrorClass != backends.ClassTimeout {
			t.Errorf("Health after the sync overran SyncTimeout = %+v, want unhealthy, class timeout", h)
		}

		close(release)
		after(time.Second)
		e.mustConverge("after the hung sync returned")
		if h := e.r.Health(); !h.Healthy || h.Pending {
			t.Errorf("Health after the change was synced = %+v, want healthy", h)
		}
	})
}

// A call that overruns SyncTimeout makes the Runner unhealthy even with no
// change waiting: nothing could be programmed.
func TestRunnerHungSyncWithoutChanges(t *testing.T) {
	const healthTimeout, syncTimeout = time.Second, 5 * time.Second
	var release chan struct{}
	var calls atomic.Int32
	hang := func() fake.Options {
		release = make(chan struct{})
		return fake.Options{BeforeSync: func(context.Context, *servicemap.Snapshot, *servicemap.Snapshot) error {
			if calls.Add(1) == 2 {
				<-release
			}
			return nil
		}}
	}
	opts := backends.RunnerOptions{SyncPeriod: time.Minute, HealthTimeout: healthTimeout, SyncTimeout: syncTimeout}
	runnerTest(t, opts, hang, func(t *testing.T, e *env) {
		after(time.Minute + syncTimeout)
		if h := e.r.Health(); !h.Healthy {
			t.Errorf("Health at SyncTimeout = %+v, want still healthy", h)
		}
		after(time.Millisecond)
		if code, body := status(t, e.r); code != http.StatusServiceUnavailable || body["error"] != "timeout" {
			t.Errorf("/healthz once the sync overran SyncTimeout = %d %v, want 503, error timeout", code, body)
		}
		close(release)
		synctest.Wait()
		if h := e.r.Health(); !h.Healthy {
			t.Errorf("Health after the sync returned = %+v, want healthy", h)
		}
	})
}

// Each call gets a SyncTimeout deadline; a backend that honours it fails
// with ErrTimeout and is retried as a full sync.
func TestRunnerSyncTimeout(t *testing.T) {
	const syncTimeout = 3 * time.Second
	var calls atomic.Int32
	slow := func() fake.Options {
		return fake.Options{BeforeSync: func(ctx context.Context, _, _ *servicemap.Snapshot) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("no deadline")
			}
			if calls.Add(1) == 2 {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}}
	}
	opts := backends.RunnerOptions{MinSyncInterval: time.Millisecond, SyncTimeout: syncTimeout, RetryMin: time.Second}
	runnerTest(t, opts, slow, func(t *testing.T, e *env) {
		e.tr.OnServiceAdd(service(1))
		after(syncTimeout + time.Millisecond)
		res := e.syncs()
		if len(res) != 2 || !errors.Is(res[1].Err, backends.ErrTimeout) || res[1].Duration != syncTimeout {
			t.Fatalf("syncs = %+v, want the second to fail with ErrTimeout after %v", res, syncTimeout)
		}
		if h := e.r.Health(); h.ErrorClass != backends.ClassTimeout {
			t.Errorf("Health().ErrorClass = %q, want timeout", h.ErrorClass)
		}
		after(time.Second)
		e.mustConverge("after the retry")
		if last := e.syncs()[2]; !last.Full || last.Err != nil {
			t.Errorf("retry = %+v, want a successful full sync", last)
		}
	})
}

// A panic in the backend's Sync does not escape Run: it is a failed sync
// with its stack in the log, retried as a full sync.
func TestRunnerRecoversPanic(t *testing.T) {
	var calls atomic.Int32
	panicky := func() fake.Options {
		return fake.Options{BeforeSync: func(context.Context, *servicemap.Snapshot, *servicemap.Snapshot) error {
			if calls.Add(1) == 2 {
				panic("index out of range [3] with length 3")
			}
			return nil
		}}
	}
	opts := backends.RunnerOptions{MinSyncInterval: time.Millisecond, RetryMin: 100 * time.Millisecond, HealthTimeout: 50 * time.Millisecond}
	runnerTest(t, opts, panicky, func(t *testing.T, e *env) {
		e.tr.OnServiceAdd(service(1))
		after(time.Millisecond)
		res := e.syncs()
		var pe *backends.PanicError
		if len(res) != 2 || !errors.As(res[1].Err, &pe) || pe.Value != "index out of range [3] with length 3" {
			t.Fatalf("syncs = %+v, want the second to fail with the panic", res)
		}
		if log := e.log(); !strings.Contains(log, "stack=") || !strings.Contains(log, "TestRunnerRecoversPanic") {
			t.Errorf("the log lacks the panic's stack:\n%s", log)
		}
		after(50 * time.Millisecond)
		if code, body := status(t, e.r); code != http.StatusServiceUnavailable || body["error"] != "panic" {
			t.Errorf("/healthz HealthTimeout after the panic = %d %v, want 503, error panic", code, body)
		}
		after(50 * time.Millisecond)
		e.mustConverge("after the retry")
		if last := e.syncs()[2]; !last.Full || last.Err != nil {
			t.Errorf("sync after the panic = %+v, want a successful full sync", last)
		}
		if code, _ := status(t, e.r); code != http.StatusOK {
			t.Errorf("/healthz after the retry = %d, want 200", code)
		}
	})
}

// A node that is not eligible (being deleted, or tainted for deletion)
// fails /healthz however healthy the Runner, as kube-proxy's does; /livez
// and Health().Healthy do not change.
func TestRunnerNodeEligible(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var eligible atomic.Bool
		eligible.Store(true)
		e := newEnv(t, backends.RunnerOptions{NodeEligible: eligible.Load}, fake.Options{})
		e.start()
		defer e.stop()
		if code, body := status(t, e.r); code != http.StatusOK || body["nodeEligible"] != true {
			t.Errorf("/healthz of an eligible node = %d %v, want 200, nodeEligible", code, body)
		}
		eligible.Store(false)
		if code, body := status(t, e.r); code != http.StatusServiceUnavailable || body["nodeEligible"] != false || body["healthy"] != true {
			t.Errorf("/healthz of a node not eligible = %d %v, want 503, healthy but not nodeEligible", code, body)
		}
		if h := e.r.Health(); !h.Healthy || h.NodeEligible {
			t.Errorf("Health of a node not eligible = %+v, want Healthy and not NodeEligible", h)
		}
		rec := httptest.NewRecorder()
		e.r.Livez().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/livez", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("/livez of a node not eligible = %d, want 200", rec.Code)
		}
		eligible.Store(true)
		if code, _ := status(t, e.r); code != http.StatusOK {
			t.Errorf("/healthz once the node is eligible again = %d, want 200", code)
		}
	})
}
