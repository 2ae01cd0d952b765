package backends

import (
	"encoding/json"
	"net/http"
	"time"
)

// HealthState names the state a Runner is in, for people and probes.
type HealthState string

// Health states.
const (
	// StateStopped: Run is not running (not started yet, or returned).
	StateStopped HealthState = "stopped"
	// StateStarting: Run is waiting for the informers or for its first
	// successful sync.
	StateStarting HealthState = "starting"
	// StateHealthy: synced, and nothing has waited HealthTimeout.
	StateHealthy HealthState = "healthy"
	// StateStale: something has waited HealthTimeout or longer for the
	// data plane: a change, a retry after a failure, a repair after a
	// drift, or a sync that overran SyncTimeout.
	StateStale HealthState = "stale"
)

// Health is the state of a Runner, as Runner.Health reports it.
//
// The rule, after kube-proxy's /healthz: a Runner is healthy while Run is
// running, once a sync has succeeded since Run started, as long as nothing
// has been pending for HealthTimeout or longer. Pending are:
//
//   - a change, from when the Tracker made it (the Runner's subscription
//     sees it at once, whatever the Runner is doing) until a sync whose
//     snapshot includes it succeeds;
//   - a retry, from the start of the sync that failed (a panic is a
//     failure) until a sync succeeds;
//   - a repair, from when a drift check found the data plane changed
//     behind the backend's back until a sync succeeds;
//   - a call of the backend still running after SyncTimeout (it ignores
//     its context), from its start.
//
// So a quiet Runner stays healthy however old its last sync; a Runner
// whose data plane keeps failing, or whose backend hangs, turns unhealthy
// HealthTimeout after the first change or failure it could not handle.
type Health struct {
	// Healthy applies the rule above at the time Health was called.
	Healthy bool
	// State is Healthy in more words.
	State HealthState
	// LastSync is when the last successful sync ended; zero before the
	// first one.
	LastSync time.Time
	// LastError is the error of the last sync; nil when it succeeded. It
	// may hold details (addresses, kernel messages) for logs, not for
	// anyone who can reach /healthz.
	LastError error
	// ErrorClass is Classify(LastError), or ClassTimeout while a call of
	// the backend overruns SyncTimeout.
	ErrorClass ErrorClass
	// Pending is true when something waits for a sync (see above), and
	// before the first sync succeeds. PendingSince is when the oldest of
	// them began; zero when there is none or no sync has run yet.
	Pending      bool
	PendingSince time.Time
	// BusySince is when the backend call in progress (a sync or a drift check)
	// started; zero when none is.
	BusySince time.Time
	// SyncedVersion is the version of the snapshot last synced.
	SyncedVersion uint64
	// NodeEligible is RunnerOptions.NodeEligible's answer (true when it is
	// nil). It is not part of Healthy: /healthz needs both.
	NodeEligible bool
}

// healthState is guarded by Runner.mu.
type healthState struct {
	synced        bool // a sync has succeeded since Run started
	lastSync      time.Time
	lastErr       error
	syncedVersion uint64
	// pendingSince is when the oldest change, retry or repair not yet
	// synced began; unclaimedSince is when the oldest change that no sync
	// has taken a snapshot for was seen (see claim).
	pendingSince   time.Time
	unclaimedSince time.Time
	busy           time.Time
}

// Health returns the Runner's health now.
func (r *Runner) Health() Health {
	now := time.Now()
	r.mu.Lock()
	s, running := r.health, r.running
	r.mu.Unlock()
	h := Health{
		LastSync:      s.lastSync,
		LastError:     s.lastErr,
		ErrorClass:    Classify(s.lastErr),
		Pending:       !s.pendingSince.IsZero() || !s.synced,
		PendingSince:  s.pendingSince,
		BusySince:     s.busy,
		SyncedVersion: s.syncedVersion,
		NodeEligible:  r.opts.NodeEligible == nil || r.opts.NodeEligible(),
	}
	oldest := s.pendingSince
	if !s.busy.IsZero() && r.opts.SyncTimeout > 0 && now.Sub(s.busy) > r.opts.SyncTimeout {
		h.ErrorClass = ClassTimeout
		if oldest.IsZero() || s.busy.Before(oldest) {
			oldest = s.busy
		}
	}
	switch {
	case !running:
		h.State = StateStopped
	case !s.synced:
		h.State = StateStarting
	case !oldest.IsZero() && now.Sub(oldest) >= r.opts.HealthTimeout:
		h.State = StateStale
	default:
		h.State, h.Healthy = StateHealthy, true
	}
	return h
}

// start marks the Runner running, with its health afresh; false when it
// already runs.
func (r *Runner) start() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		return false
	}
	r.running, r.health, r.started = true, healthState{}, time.Now()
	return true
}

// stop marks the Runner stopped: unhealthy from now on.
func (r *Runner) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running = false
}

// noteChange records a change notification seen at t.
func (r *Runner) noteChange(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.health.pendingSince.IsZero() {
		r.health.pendingSince = t
	}
	if r.health.unclaimedSince.IsZero() {
		r.health.unclaimedSince = t
	}
}

// unclaimed reports whether a change was seen since the last claim.
func (r *Runner) unclaimed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.health.unclaimedSince.IsZero()
}

// claim is called just before a sync takes its snapshot: every change seen
// so far is in it.
func (r *Runner) claim() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.health.unclaimedSince = time.Time{}
}

// settle records that the snapshot taken after the last claim needs no
// sync: what is pending is what was seen since.
func (r *Runner) settle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.health.pendingSince = r.health.unclaimedSince
}

// markPending records something pending since t.
func (r *Runner) markPending(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.health.pendingSince.IsZero() || t.Before(r.health.pendingSince) {
		r.health.pendingSince = t
	}
}

// setBusy records the start of a backend call, or its end (zero).
func (r *Runner) setBusy(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.health.busy = t
}

// recordFailure records a sync that started at start and failed.
func (r *Runner) recordFailure(start time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.health.lastErr = err
	if r.health.pendingSince.IsZero() || start.Before(r.health.pendingSince) {
		r.health.pendingSince = start
	}
}

// recordSuccess records a sync to version that ended at end: what is still
// pending is what was seen since its claim.
func (r *Runner) recordSuccess(end time.Time, version uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.health
	s.synced, s.lastSync, s.lastErr, s.syncedVersion = true, end, nil, version
	s.pendingSince = s.unclaimedSince
}

// healthBody is the JSON that ServeHTTP writes. It carries the error's
// class, never its text: /healthz is usually served to anyone who can
// reach the port.
type healthBody struct {
	State         HealthState `json:"state"`
	Healthy       bool        `json:"healthy"`
	Error         ErrorClass  `json:"error,omitempty"`
	LastSync      time.Time   `json:"lastSync,omitzero"`
	CurrentTime   time.Time   `json:"currentTime"`
	SyncedVersion uint64      `json:"syncedVersion"`
	Pending       bool        `json:"pending"`
	PendingSince  time.Time   `json:"pendingSince,omitzero"`
	NodeEligible  bool        `json:"nodeEligible"`
}

// ServeHTTP answers any request with the Runner's health as a small JSON
// object (its state, and the class of the last error, not its text), with
// status 200 when it is healthy and its node eligible (see
// RunnerOptions.NodeEligible), 503 otherwise: mount it at /healthz.
func (r *Runner) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if f := r.opts.Metrics.Served; f != nil {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() { f("/healthz", rec.code) }()
		w = rec
	}
	h := r.Health()
	body := healthBody{
		State:         h.State,
		Healthy:       h.Healthy,
		Error:         h.ErrorClass,
		LastSync:      h.LastSync,
		CurrentTime:   time.Now(),
		SyncedVersion: h.SyncedVersion,
		Pending:       h.Pending,
		PendingSince:  h.PendingSince,
		NodeEligible:  h.NodeEligible,
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if h.Healthy && h.NodeEligible {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

// Live reports whether the Runner's loop turns: Run is running and no call
// of the backend has overrun SyncTimeout. It is the liveness of the
// process, not the currency of the data plane: a Runner waiting for
// informers, or whose syncs fail and are retried, is live (restarting it
// would not help), but one stuck in a backend call is not.
func (r *Runner) Live() bool {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return false
	}
	busy := r.health.busy
	return busy.IsZero() || r.opts.SyncTimeout <= 0 || now.Sub(busy) <= r.opts.SyncTimeout
}

// Livez returns the handler to mount at /livez: 200 while Live, 503
// otherwise, with a small JSON body. (/healthz, ServeHTTP, answers whether
// the data plane is current.)
func (r *Runner) Livez() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		code := http.StatusOK
		live := r.Live()
		if !live {
			code = http.StatusServiceUnavailable
		}
		if f := r.opts.Metrics.Served; f != nil {
			defer f("/livez", code)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(struct {
			Live        bool      `json:"live"`
			CurrentTime time.Time `json:"currentTime"`
		}{live, time.Now()})
	})
}
