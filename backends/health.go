package backends

import (
	"encoding/json"
	"net/http"
	"time"
)

// Health is the state of a Runner, as Runner.Health reports it.
//
// The rule, after kube-proxy's /healthz: a Runner is healthy once a sync has
// succeeded, as long as no change has been pending for HealthTimeout or
// longer. A change is pending from when the Runner sees it until a sync that
// includes it succeeds; a failed sync makes a retry pending from when it
// started. So a quiet Runner stays healthy however old its last sync, and a
// Runner whose data plane keeps failing turns unhealthy HealthTimeout after
// the first failure.
type Health struct {
	// Healthy applies the rule above at the time Health was called.
	Healthy bool
	// LastSync is when the last successful sync ended; zero before the
	// first one.
	LastSync time.Time
	// LastError is the error of the last sync; nil when it succeeded.
	LastError error
	// Pending is true when a change or a retry waits for a sync, and
	// before the first sync succeeds. PendingSince is when the oldest of
	// them began; zero when there is none or no sync has run yet.
	Pending      bool
	PendingSince time.Time
	// SyncedVersion is the version of the snapshot last synced.
	SyncedVersion uint64
}

type healthState struct {
	synced        bool // a sync has succeeded
	lastSync      time.Time
	lastErr       error
	syncedVersion uint64
	pendingSince  time.Time
}

// Health returns the Runner's health now.
func (r *Runner) Health() Health {
	now := time.Now()
	r.mu.Lock()
	s := r.health
	r.mu.Unlock()
	pending := !s.pendingSince.IsZero()
	return Health{
		Healthy:       s.synced && (!pending || now.Sub(s.pendingSince) < r.opts.HealthTimeout),
		LastSync:      s.lastSync,
		LastError:     s.lastErr,
		Pending:       pending || !s.synced,
		PendingSince:  s.pendingSince,
		SyncedVersion: s.syncedVersion,
	}
}

// markPending records that a change was seen at t.
func (r *Runner) markPending(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.health.pendingSince.IsZero() {
		r.health.pendingSince = t
	}
}

// clearPending records that the changes seen need no sync.
func (r *Runner) clearPending() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.health.pendingSince = time.Time{}
}

// recordFailure records a sync that started at start and failed.
func (r *Runner) recordFailure(start time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.health.lastErr = err
	if r.health.pendingSince.IsZero() {
		r.health.pendingSince = start
	}
}

// recordSuccess records a sync to version that ended at end; pendingSince
// is when the oldest change it did not include was seen (zero when none).
func (r *Runner) recordSuccess(end time.Time, version uint64, pendingSince time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.health = healthState{
		synced:        true,
		lastSync:      end,
		syncedVersion: version,
		pendingSince:  pendingSince,
	}
}

// healthBody is the JSON that ServeHTTP writes.
type healthBody struct {
	Healthy       bool      `json:"healthy"`
	LastSync      time.Time `json:"lastSync,omitzero"`
	CurrentTime   time.Time `json:"currentTime"`
	SyncedVersion uint64    `json:"syncedVersion"`
	Pending       bool      `json:"pending"`
	PendingSince  time.Time `json:"pendingSince,omitzero"`
	LastError     string    `json:"lastError,omitempty"`
}

// ServeHTTP answers any request with the Runner's health as a small JSON
// object, with status 200 when it is healthy and 503 otherwise: mount it at
// /healthz.
func (r *Runner) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h := r.Health()
	body := healthBody{
		Healthy:       h.Healthy,
		LastSync:      h.LastSync,
		CurrentTime:   time.Now(),
		SyncedVersion: h.SyncedVersion,
		Pending:       h.Pending,
		PendingSince:  h.PendingSince,
	}
	if h.LastError != nil {
		body.LastError = h.LastError.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if h.Healthy {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}
