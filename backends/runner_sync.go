package backends

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/lbkit/lbkit/servicemap"
)

// syncIfNeeded takes a snapshot and syncs it when that is needed. It
// returns true when ctx was cancelled during the sync.
func (r *Runner) syncIfNeeded(ctx context.Context, l *loop, now time.Time) bool {
	full := l.prev == nil || l.drifted ||
		(r.opts.SyncPeriod > 0 && !now.Before(l.lastFull.Add(r.opts.SyncPeriod)))
	// Changes seen from here on may miss the snapshot: they stay pending.
	r.claim()
	taken := r.tracker.ChangeCounts() // every change counted is in snap
	snap := r.tracker.Snapshot()
	if !full && snap.Version() == l.prev.Version() {
		r.settle()
		return false
	}

	var prev *servicemap.Snapshot
	var changes servicemap.Changes
	res := SyncResult{Full: full, To: snap.Version(), Start: now}
	if full {
		res.Changes = snap.Len()
	} else {
		prev = l.prev
		res.From = prev.Version()
		changes = servicemap.Diff(prev, snap)
		res.Changes = len(changes.Added) + len(changes.Updated) + len(changes.Removed)
	}
	l.lastStart = now
	res.Err = r.call(ctx, now, func(ctx context.Context) error {
		if full {
			return r.backend.Sync(ctx, nil, snap)
		}
		if cs, ok := r.backend.(ChangesSyncer); ok {
			return cs.SyncChanges(ctx, prev, snap, &changes)
		}
		return r.backend.Sync(ctx, prev, snap)
	})
	end := time.Now()
	res.Duration = end.Sub(now)
	if res.Err != nil && ctx.Err() != nil {
		return true // shutting down: not a failure of the data plane
	}

	if res.Err != nil {
		l.prev = nil
		l.backoff = min(max(2*l.backoff, r.opts.RetryMin), r.opts.RetryMax)
		l.retryAt = end.Add(l.backoff)
		r.logFailure("sync failed; retrying with a full sync", res.Err,
			"full", full, "from", res.From, "to", res.To, "retryIn", l.backoff)
		r.recordFailure(now, res.Err)
	} else {
		l.prev, l.drifted = snap, false
		l.backoff, l.retryAt = 0, time.Time{}
		if full {
			l.lastFull = now
			l.lastCheck = now
		}
		r.log.Debug("synced", "full", full, "from", res.From, "to", res.To,
			"changes", res.Changes, "duration", res.Duration)
		r.recordSuccess(end, snap.Version())
		r.reportSynced(l, snap, full, &changes)
		r.reportProgrammed(taken, end)
	}
	if r.opts.OnSync != nil {
		r.opts.OnSync(res)
	}
	if f := r.opts.Metrics.Synced; f != nil {
		f(res)
	}
	return false
}

// reportSynced gives the metrics hooks what a successful sync changed.
func (r *Runner) reportSynced(l *loop, snap *servicemap.Snapshot, full bool, changes *servicemap.Changes) {
	m := r.opts.Metrics
	if m.NoLocalEndpoints != nil {
		if full {
			changes = nil
		}
		l.noLocal.count(snap, changes)
		m.NoLocalEndpoints(l.noLocal.internal, l.noLocal.external)
	}
	if c, ok := find[Counter](r.backend); ok && m.Programmed != nil {
		m.Programmed(r.backend.Name(), c.Programmed())
	}
}

// reportProgrammed records that the changes counted up to taken are
// programmed, and gives Metrics.ProgrammingLatency the time from each
// EndpointSlice change's trigger time (since Run started) to end.
func (r *Runner) reportProgrammed(taken servicemap.ChangeCounts, end time.Time) {
	r.mu.Lock()
	before, started := r.synced, r.started
	r.synced = taken
	r.mu.Unlock()
	if f := r.opts.Metrics.ProgrammingLatency; f != nil {
		for _, t := range r.tracker.TriggerTimes(before.EndpointSlices, taken.EndpointSlices) {
			if !t.Before(started) {
				f(r.backend.Name(), end.Sub(t))
			}
		}
	}
	r.reportChanges()
}

// checkDrift asks the backend whether its data plane drifted, and makes
// the next sync full if so. It returns true when ctx was cancelled.
func (r *Runner) checkDrift(ctx context.Context, l *loop, now time.Time) bool {
	l.lastCheck = now
	dc, _ := find[DriftChecker](r.backend)
	var drifted bool
	err := r.call(ctx, now, func(ctx context.Context) error {
		var err error
		drifted, err = dc.Drifted(ctx)
		return err
	})
	if ctx.Err() != nil {
		return true
	}
	switch {
	case err != nil:
		r.logFailure("drift check failed; next sync is a full one", err)
	case drifted:
		r.log.Warn("data plane changed from outside; next sync is a full one")
		if f := r.opts.Metrics.Drift; f != nil {
			f(r.backend.Name())
		}
	default:
		return false
	}
	l.drifted = true
	r.markPending(now)
	return false
}

// call runs f, the Runner's one call of the backend, with the SyncTimeout
// deadline, and turns a panic into a *PanicError. While it runs, Health
// can see how long it has been running.
func (r *Runner) call(ctx context.Context, start time.Time, f func(context.Context) error) (err error) {
	if r.opts.SyncTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.opts.SyncTimeout)
		defer cancel()
	}
	r.setBusy(start)
	defer r.setBusy(time.Time{})
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	err = f(ctx)
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%w: after %v: %w", ErrTimeout, r.opts.SyncTimeout, err)
	}
	return err
}

// logFailure logs err at error level, with the stack of a panic.
func (r *Runner) logFailure(msg string, err error, args ...any) {
	args = append(args, "class", Classify(err), "err", err)
	if pe, ok := err.(*PanicError); ok {
		args = append(args, "stack", string(pe.Stack))
	}
	r.log.Error(msg, args...)
}
