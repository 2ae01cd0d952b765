package backends

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/lbkit/lbkit/servicemap"
)

// Defaults of RunnerOptions.
const (
	DefaultMinSyncInterval    = time.Second
	DefaultSyncPeriod         = time.Hour
	DefaultRetryMin           = time.Second
	DefaultRetryMax           = time.Minute
	DefaultSyncTimeout        = 2 * time.Minute
	DefaultDriftCheckInterval = 10 * time.Second
)

// RunnerOptions configure a Runner. The zero value is usable once HasSynced
// or NoWaitForSync is set.
type RunnerOptions struct {
	// MinSyncInterval is the least time between the starts of two syncs:
	// events arriving closer together are coalesced into one sync. Zero
	// means DefaultMinSyncInterval; negative means no minimum.
	MinSyncInterval time.Duration
	// SyncPeriod is how often a full sync (prev nil) runs even when nothing
	// changed, to repair what a drift check cannot see. It is measured
	// from the start of the last successful full sync. Zero means
	// DefaultSyncPeriod; negative disables periodic full syncs.
	SyncPeriod time.Duration
	// RetryMin and RetryMax bound the exponential backoff after a failed
	// sync: the first retry waits RetryMin after the failure, each further
	// one twice as long as the one before, up to RetryMax. Zero means
	// DefaultRetryMin and DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// SyncTimeout is the deadline of each call of the backend (Sync,
	// SyncChanges, Drifted), passed as its context. A call that ends with
	// an error after its deadline failed with ErrTimeout; a call still
	// running after it (a backend ignoring its context) makes the Runner
	// unhealthy as a failed sync would. Zero means DefaultSyncTimeout;
	// negative means no deadline.
	SyncTimeout time.Duration
	// DriftCheckInterval is how often the Runner asks a backend that
	// implements DriftChecker whether its data plane was changed behind its
	// back; a drift makes the next sync a full one. Checks are counted
	// from the last check or successful full sync. Zero means
	// DefaultDriftCheckInterval; negative disables drift checks.
	DriftCheckInterval time.Duration
	// HealthTimeout is how long a change may stay pending (seen but not in
	// the data plane, including while retries fail or a sync hangs) before
	// the Runner reports itself unhealthy. Zero means 2*MinSyncInterval +
	// RetryMax (62s with the defaults, close to kube-proxy's 60s): a
	// change waits at most about one interval, and a failing data plane
	// turns unhealthy once the backoff has reached its maximum.
	HealthTimeout time.Duration
	// Logger receives the Runner's logs; nil discards them.
	Logger *slog.Logger
	// OnSync, when set, is called after every call of the backend's Sync,
	// from the goroutine running Run. It must not block.
	OnSync func(SyncResult)
	// Metrics receives the Runner's measurements (see Metrics); nil
	// reports nothing.
	Metrics *Metrics
	// HasSynced are polled before the first sync, which waits until all of
	// them return true: the HasSynced of the registrations that
	// AddEventHandler returned for the handlers feeding the Tracker (not
	// the informers' own HasSynced, which can be true before the handlers
	// have seen every object), so the first sync does not program a
	// half-listed cluster.
	HasSynced []func() bool
	// NoWaitForSync must be set to run without HasSynced: the first sync
	// then programs whatever the Tracker holds, and, being a full sync,
	// removes everything else the backend finds. For a Tracker fed
	// completely before Run (a file, a test), not for informers.
	NoWaitForSync bool
	// NodeEligible, when set, is asked by /healthz (ServeHTTP) whether this
	// node may take load-balancer traffic; /healthz answers 503 while it is
	// false, however healthy the Runner, as kube-proxy's does for a node
	// being deleted or tainted for deletion. Pass the Tracker's
	// NodeEligible when a Node informer feeds it. /livez ignores it. Nil
	// means always eligible.
	NodeEligible func() bool
}

// SyncResult describes one call of the backend's Sync.
type SyncResult struct {
	// Full is true for a full sync (prev nil): the first one, a retry after
	// a failure, a repair after a drift, or a periodic one.
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
	// Err is what Sync returned, wrapped in ErrTimeout when it failed
	// after its deadline; a *PanicError when it panicked.
	Err error
}

// Runner drives a backend from a Tracker: it waits for the informers to
// sync, then brings the backend to the Tracker's latest snapshot whenever it
// changes, at most once per MinSyncInterval. Rules:
//
//   - Run refuses to start (ErrNoHasSynced) without HasSynced, unless
//     NoWaitForSync says so: a first sync of a half-listed cluster would
//     remove what a previous process programmed.
//   - The first sync is a full one and happens as soon as every HasSynced
//     returns true, even if the snapshot is empty (a restarted process must
//     remove what it left behind).
//   - The Runner reads changes from its own Tracker subscription
//     (Tracker.Subscribe), so other readers of the Tracker take nothing
//     from it. A change starts a sync once MinSyncInterval has passed since
//     the last one started; everything that arrives meanwhile is coalesced
//     into it. A change that arrives during a sync is synced after it: none
//     is lost.
//   - A snapshot whose version equals the one last synced is not synced,
//     except by a full sync.
//   - An incremental sync computes servicemap.Diff once and hands it to a
//     backend that implements ChangesSyncer.
//   - Every call of the backend gets a context with a SyncTimeout
//     deadline. A panic in it is recovered, logged with its stack, and
//     counts as a failed sync (a *PanicError).
//   - A failed sync is retried as a full sync (prev nil), after an
//     exponential backoff between RetryMin and RetryMax; a success resets
//     the backoff. Changes arriving during the backoff wait for the retry.
//   - Every DriftCheckInterval, a backend that implements DriftChecker is
//     asked whether its data plane was changed behind its back; a drift (or
//     an error answering) makes the next sync full, MinSyncInterval after
//     the last sync started at the earliest.
//   - Every SyncPeriod after the last successful full sync, a full sync
//     runs even when nothing changed.
//
// Health (see Health for the rule) counts a change as pending from when
// the Tracker made it, whatever the Runner is doing then: a hung sync does
// not hide the changes waiting behind it, and a sync still running after
// SyncTimeout counts as failed. Health is unhealthy whenever Run is not
// running, before and after. ServeHTTP (/healthz) answers 200 or 503 with
// the state and the class of the last error (Classify), never the error's
// text, which goes to the log.
//
// The Runner calls the backend from the goroutine running Run only (so a
// backend whose calls must happen in one network namespace can be run with
// that goroutine locked there). Health and ServeHTTP are safe to call
// concurrently with Run.
type Runner struct {
	tracker *servicemap.Tracker
	backend Interface
	opts    RunnerOptions
	log     *slog.Logger

	mu      sync.Mutex
	running bool // Run has not returned
	health  healthState
	synced  servicemap.ChangeCounts // the Tracker's counts when the last successful sync's snapshot was taken
	started time.Time               // when Run started: older trigger times are not latencies of ours
}

// reportChanges gives Metrics.Changes the counts still pending and seen.
func (r *Runner) reportChanges() {
	f := r.opts.Metrics.Changes
	if f == nil {
		return
	}
	total := r.tracker.ChangeCounts()
	r.mu.Lock()
	synced := r.synced
	r.mu.Unlock()
	f(total.Sub(synced), total)
}

// NewRunner returns a Runner that syncs b to t's snapshots. Call Run to
// start it; Run checks that opts has HasSynced or NoWaitForSync.
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
	if opts.SyncTimeout == 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	if opts.DriftCheckInterval == 0 {
		opts.DriftCheckInterval = DefaultDriftCheckInterval
	}
	if opts.Metrics == nil {
		opts.Metrics = &Metrics{}
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
	drifted   bool                 // a drift check asked for a full sync
	lastStart time.Time            // start of the last sync attempt
	lastFull  time.Time            // start of the last successful full sync
	lastCheck time.Time            // last drift check, or lastFull if later
	backoff   time.Duration        // wait before the last retry; 0 after a success
	retryAt   time.Time            // when a failed sync is retried
	noLocal   noLocal              // of prev, for Metrics.NoLocalEndpoints
}

// Run syncs until ctx is done, then returns nil. It returns ErrRunning if
// another Run of the same Runner has not returned, and ErrNoHasSynced when
// the options have neither HasSynced nor NoWaitForSync. Each Run starts
// with a full sync, and health starts afresh.
func (r *Runner) Run(ctx context.Context) error {
	if len(r.opts.HasSynced) == 0 && !r.opts.NoWaitForSync {
		return ErrNoHasSynced
	}
	if !r.start() {
		return ErrRunning
	}
	defer r.stop()

	// The subscription is drained by its own goroutine, which records when
	// each change was seen: a change is pending from then on, even while
	// the loop is stuck in a backend call.
	changes, unsubscribe := r.tracker.Subscribe()
	wake := make(chan struct{}, 1)
	var drained sync.WaitGroup
	drained.Go(func() {
		for range changes {
			now := time.Now()
			r.noteChange(now)
			if f := r.opts.Metrics.Queued; f != nil {
				f(now)
			}
			r.reportChanges()
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	})
	defer drained.Wait()
	defer unsubscribe()
	// A sync is due from the start, as kube-proxy has it: the queued time
	// then runs ahead of the last sync's until the first one succeeds.
	if f := r.opts.Metrics.Queued; f != nil {
		f(time.Now())
	}

	if !r.waitForCaches(ctx) {
		return nil
	}
	r.log.Info("starting sync loop")

	_, canCheck := find[DriftChecker](r.backend)
	canCheck = canCheck && r.opts.DriftCheckInterval > 0
	var l loop
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		now := time.Now()
		syncAt, syncWanted := r.nextSync(&l, r.unclaimed())
		checkAt, checkWanted := l.lastCheck.Add(r.opts.DriftCheckInterval), canCheck && l.prev != nil && !l.drifted
		switch {
		case checkWanted && !checkAt.After(now):
			if r.checkDrift(ctx, &l, now) {
				return nil
			}
			continue
		case syncWanted && !syncAt.After(now):
			if r.syncIfNeeded(ctx, &l, now) {
				return nil
			}
			continue
		}
		at, wait := syncAt, syncWanted
		if checkWanted && (!wait || checkAt.Before(at)) {
			at, wait = checkAt, true
		}
		if wait {
			timer.Reset(at.Sub(now))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
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
// wanted until something changes. changed says a change waits.
func (r *Runner) nextSync(l *loop, changed bool) (time.Time, bool) {
	var at time.Time
	want := false
	switch {
	case l.prev == nil: // the first sync, or a retry
		at, want = l.retryAt, true
	case changed || l.drifted:
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
