package backends

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lbkit/lbkit/servicemap"
)

// Defaults of RunnerOptions.
const (
	DefaultMinSyncInterval = time.Second
	DefaultSyncPeriod      = time.Hour
	DefaultRetryMin        = time.Second
	DefaultRetryMax        = time.Minute
)

// RunnerOptions configure a Runner. The zero value is usable.
type RunnerOptions struct {
	// MinSyncInterval is the least time between the starts of two syncs:
	// events arriving closer together are coalesced into one sync. Zero
	// means DefaultMinSyncInterval; negative means no minimum.
	MinSyncInterval time.Duration
	// SyncPeriod is how often a full sync (prev nil) runs even when nothing
	// changed, to repair a data plane altered behind the backend's back.
	// It is measured from the start of the last successful full sync. Zero
	// means DefaultSyncPeriod; negative disables periodic full syncs.
	SyncPeriod time.Duration
	// RetryMin and RetryMax bound the exponential backoff after a failed
	// sync: the first retry waits RetryMin after the failure, each further
	// one twice as long as the one before, up to RetryMax. Zero means
	// DefaultRetryMin and DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// HealthTimeout is how long a change may stay pending (seen but not in
	// the data plane, including while retries fail) before the Runner
	// reports itself unhealthy. Zero means 2*MinSyncInterval + RetryMax
	// (62s with the defaults, close to kube-proxy's 60s): a change waits
	// at most about one interval, and a failing data plane turns unhealthy
	// once the backoff has reached its maximum.
	HealthTimeout time.Duration
	// Logger receives the Runner's logs; nil discards them.
	Logger *slog.Logger
	// OnSync, when set, is called after every call of the backend's Sync,
	// from the goroutine running Run (for metrics). It must not block.
	OnSync func(SyncResult)
	// HasSynced are polled before the first sync, which waits until all of
	// them return true: typically the HasSynced of the Service and
	// EndpointSlice informers feeding the Tracker, so the first sync does
	// not program a half-listed cluster.
	HasSynced []func() bool
}

// SyncResult describes one call of the backend's Sync.
type SyncResult struct {
	// Full is true for a full sync (prev nil): the first one, a retry after
	// a failure, or a periodic one.
	Full bool
	// From is the version of the prev snapshot (0 for a full sync), To the
	// version of the snapshot synced to.
	From, To uint64
	// Start is when the sync started; Duration how long Sync took.
	Start    time.Time
	Duration time.Duration
	// Changes is the number of service ports added, updated or removed
	// between prev and next; for a full sync, every port of next.
	Changes int
	// Err is what Sync returned.
	Err error
}

// Runner drives a backend from a Tracker: it waits for the informers to
// sync, then brings the backend to the Tracker's latest snapshot whenever it
// changes, at most once per MinSyncInterval. Rules:
//
//   - The first sync is a full one and happens as soon as every HasSynced
//     returns true, even if the snapshot is empty (a restarted process must
//     remove what it left behind).
//   - A change notification starts a sync once MinSyncInterval has passed
//     since the last one started; everything that arrives meanwhile is
//     coalesced into it. A change that arrives during a sync is synced
//     after it: none is lost.
//   - A snapshot whose version equals the one last synced is not synced,
//     except by the periodic full sync.
//   - A failed sync is retried as a full sync (prev nil), after an
//     exponential backoff between RetryMin and RetryMax; a success resets
//     the backoff. Changes arriving during the backoff wait for the retry.
//   - Every SyncPeriod after the last successful full sync, a full sync
//     runs even when nothing changed.
//
// The Runner calls the backend from one goroutine only. Health and
// ServeHTTP are safe to call concurrently with Run.
type Runner struct {
	tracker *servicemap.Tracker
	backend Interface
	opts    RunnerOptions
	log     *slog.Logger
	running atomic.Bool

	mu     sync.Mutex
	health healthState
}

// NewRunner returns a Runner that syncs b to t's snapshots. Call Run to
// start it.
func NewRunner(t *servicemap.Tracker, b Interface, opts RunnerOptions) *Runner {
	if opts.MinSyncInterval == 0 {
		opts.MinSyncInterval = DefaultMinSyncInterval
	}
	opts.MinSyncInterval = max(opts.MinSyncInterval, 0)
	if opts.SyncPeriod == 0 {
		opts.SyncPeriod = DefaultSyncPeriod
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = DefaultRetryMax
	}
	opts.RetryMax = max(opts.RetryMax, opts.RetryMin)
	if opts.HealthTimeout <= 0 {
		opts.HealthTimeout = 2*opts.MinSyncInterval + opts.RetryMax
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{
		tracker: t,
		backend: b,
		opts:    opts,
		log:     log.With("backend", b.Name()),
	}
}

// ErrRunning is returned by Run when the Runner is already running.
var ErrRunning = errors.New("backends: Runner is already running")

// loop is the state of one Run call.
type loop struct {
	prev      *servicemap.Snapshot // last snapshot synced; nil makes the next sync full
	changed   bool                 // a change notification not yet acted on
	lastStart time.Time            // start of the last sync attempt
	lastFull  time.Time            // start of the last successful full sync
	backoff   time.Duration        // wait before the last retry; 0 after a success
	retryAt   time.Time            // when a failed sync is retried
}

// Run syncs until ctx is done, then returns nil. It returns ErrRunning if
// another Run of the same Runner has not returned. Each Run starts with a
// full sync.
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer r.running.Store(false)
	if !r.waitForCaches(ctx) {
		return nil
	}
	r.log.Info("starting sync loop")

	var l loop
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		now := time.Now()
		at, ok := r.nextSync(&l)
		if ok && !at.After(now) {
			if r.syncIfNeeded(ctx, &l, now) {
				return nil
			}
			continue
		}
		if ok {
			timer.Reset(at.Sub(now))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.tracker.Changed():
			l.changed = true
			r.markPending(time.Now())
		case <-timer.C:
		}
	}
	return nil
}

// waitForCaches polls HasSynced until all return true; false when ctx is
// done first.
func (r *Runner) waitForCaches(ctx context.Context) bool {
	if len(r.opts.HasSynced) == 0 {
		return ctx.Err() == nil
	}
	poll := min(100*time.Millisecond, max(r.opts.MinSyncInterval, time.Millisecond))
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	logged := false
	for {
		synced := true
		for _, f := range r.opts.HasSynced {
			synced = synced && f()
		}
		if synced {
			return ctx.Err() == nil
		}
		if !logged {
			r.log.Info("waiting for caches to sync")
			logged = true
		}
		select {
		case <-ctx.Done():
			return false
		case <-ticker.C:
		}
	}
}

// nextSync returns when the next sync should start, or false when none is
// wanted until something changes.
func (r *Runner) nextSync(l *loop) (time.Time, bool) {
	var at time.Time
	want := false
	switch {
	case l.prev == nil: // the first sync, or a retry
		at, want = l.retryAt, true
	case l.changed:
		at, want = l.lastStart, true
	}
	if r.opts.SyncPeriod > 0 && l.prev != nil {
		if p := l.lastFull.Add(r.opts.SyncPeriod); !want || p.Before(at) {
			at, want = p, true
		}
	}
	if !want {
		return time.Time{}, false
	}
	if earliest := l.lastStart.Add(r.opts.MinSyncInterval); at.Before(earliest) {
		at = earliest
	}
	return at, true
}

// syncIfNeeded takes a snapshot and syncs it when that is needed. It
// returns true when ctx was cancelled during the sync.
func (r *Runner) syncIfNeeded(ctx context.Context, l *loop, now time.Time) bool {
	full := l.prev == nil ||
		(r.opts.SyncPeriod > 0 && !now.Before(l.lastFull.Add(r.opts.SyncPeriod)))
	l.changed = false
	snap := r.tracker.Snapshot()
	if !full && snap.Version() == l.prev.Version() {
		r.clearPending()
		return false
	}

	var prev *servicemap.Snapshot
	res := SyncResult{Full: full, To: snap.Version(), Start: now}
	if full {
		res.Changes = snap.Len()
	} else {
		prev = l.prev
		res.From = prev.Version()
		c := servicemap.Diff(prev, snap)
		res.Changes = len(c.Added) + len(c.Updated) + len(c.Removed)
	}
	l.lastStart = now
	res.Err = r.backend.Sync(ctx, prev, snap)
	end := time.Now()
	res.Duration = end.Sub(now)
	if res.Err != nil && ctx.Err() != nil {
		return true // shutting down: not a failure of the data plane
	}

	if res.Err != nil {
		l.prev = nil
		l.backoff = min(max(2*l.backoff, r.opts.RetryMin), r.opts.RetryMax)
		l.retryAt = end.Add(l.backoff)
		r.log.Error("sync failed; retrying with a full sync",
			"full", full, "from", res.From, "to", res.To, "retryIn", l.backoff, "err", res.Err)
		r.recordFailure(now, res.Err)
	} else {
		l.prev = snap
		l.backoff, l.retryAt = 0, time.Time{}
		if full {
			l.lastFull = now
		}
		r.log.Debug("synced", "full", full, "from", res.From, "to", res.To,
			"changes", res.Changes, "duration", res.Duration)
		// A change that arrived during the sync is pending since the sync
		// began, at the latest; look at it now rather than lose its age.
		select {
		case <-r.tracker.Changed():
			l.changed = true
			r.recordSuccess(end, snap.Version(), now)
		default:
			r.recordSuccess(end, snap.Version(), time.Time{})
		}
	}
	if r.opts.OnSync != nil {
		r.opts.OnSync(res)
	}
	return false
}
