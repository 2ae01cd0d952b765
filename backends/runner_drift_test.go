package backends_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/fake"
)

// A data plane flushed behind the Runner's back is repaired by a full
// sync at the next drift check, not at the next change or SyncPeriod.
func TestRunnerRepairsDrift(t *testing.T) {
	const interval = 10 * time.Second
	runnerTest(t, backends.RunnerOptions{MinSyncInterval: 100 * time.Millisecond}, nil, func(t *testing.T, e *env) {
		for i := range 5 {
			e.tr.OnServiceAdd(service(i))
		}
		after(time.Second)
		e.mustConverge("before the flush")
		e.b.Flush()
		after(interval - time.Second - time.Millisecond)
		if e.b.Dump() != "" {
			t.Fatalf("repaired before the drift check: %d syncs", len(e.syncs()))
		}
		after(time.Millisecond)
		e.mustConverge("at the drift check")
		res := e.syncs()
		if last := res[len(res)-1]; !last.Full || last.Err != nil || last.Start.Sub(res[0].Start) != interval {
			t.Errorf("repair = %+v, want a full sync at %v", last, interval)
		}
		if h := e.r.Health(); !h.Healthy || h.Pending {
			t.Errorf("Health after the repair = %+v, want healthy", h)
		}

		// Without drift, checks cause no sync.
		n := len(res)
		after(10 * interval)
		if got := len(e.syncs()); got != n {
			t.Errorf("%d syncs while nothing drifted, want none: %+v", got-n, e.syncs()[n:])
		}
	})
}

// Incremental syncs do not postpone drift checks: with a change every
// second, a flush is still repaired within one interval.
func TestRunnerChecksDriftWhileBusy(t *testing.T) {
	const interval = 5 * time.Second
	opts := backends.RunnerOptions{MinSyncInterval: 100 * time.Millisecond, DriftCheckInterval: interval}
	runnerTest(t, opts, nil, func(t *testing.T, e *env) {
		e.tr.OnServiceAdd(service(0))
		after(time.Second)
		e.b.Flush()
		flushed := time.Now()
		for i := 1; e.b.Dump() == "" || !strings.Contains(e.b.Dump(), "svc-0:"); i++ {
			if time.Since(flushed) > interval {
				t.Fatalf("not repaired %v after the flush; syncs: %+v", time.Since(flushed), e.syncs())
			}
			e.tr.OnServiceAdd(service(i))
			after(time.Second)
		}
		after(time.Second)
		e.mustConverge("after the repair")
	})
}

// A drift check that fails, or panics, makes the next sync full: the
// Runner cannot tell, so it reconciles.
func TestRunnerDriftCheckFailure(t *testing.T) {
	var calls atomic.Int32
	fopts := func() fake.Options {
		return fake.Options{BeforeDriftCheck: func(context.Context) error {
			switch calls.Add(1) {
			case 1:
				return errors.New("netlink: no buffer space")
			case 2:
				panic("drift check bug")
			}
			return nil
		}}
	}
	opts := backends.RunnerOptions{MinSyncInterval: 100 * time.Millisecond, DriftCheckInterval: time.Second}
	runnerTest(t, opts, fopts, func(t *testing.T, e *env) {
		after(time.Second)
		after(time.Second)
		after(time.Second)
		res := e.syncs()
		if len(res) != 3 || !res[1].Full || !res[2].Full || res[1].Err != nil || res[2].Err != nil {
			t.Errorf("syncs = %+v, want the first and two full syncs, after the failed and the panicking check", res)
		}
		if log := e.log(); !strings.Contains(log, "no buffer space") || !strings.Contains(log, "drift check bug") || !strings.Contains(log, "stack=") {
			t.Errorf("the log lacks the check's error, panic or stack:\n%s", log)
		}
		if h := e.r.Health(); !h.Healthy {
			t.Errorf("Health = %+v, want healthy", h)
		}
	})
}
