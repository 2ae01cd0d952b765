package backends

import (
	"net/http"
	"time"

	"github.com/lbkit/lbkit/servicemap"
)

// Metrics are the hooks through which a Runner reports what it measures,
// for its own syncs, for the Tracker it follows and for the backend it
// drives, without importing a metrics library: backends/prommetrics turns
// them into Prometheus series, and a caller may fill in only the hooks it
// wants. A nil hook is not called. Hooks are called from the Runner's
// goroutines and must not block.
type Metrics struct {
	// Synced is called after every call of the backend's Sync (as
	// RunnerOptions.OnSync).
	Synced func(SyncResult)
	// Queued is called when Run starts (the first sync is due) and when
	// the Runner sees a change it will have to sync, with the time.
	Queued func(time.Time)
	// NoLocalEndpoints is called after every successful sync with the
	// number of service ports whose Local internal (cluster IP) or
	// external traffic policy finds no endpoint on this node while the
	// service has endpoints elsewhere: that traffic is dropped.
	NoLocalEndpoints func(internal, external int)
	// Programmed is called after every successful sync of a backend that
	// implements Counter, with what it now holds.
	Programmed func(backend string, counts map[string]int)
	// Drift is called when a drift check finds the data plane changed
	// from outside.
	Drift func(backend string)
	// Served is called for every health request the Runner answers, with
	// the handler's path ("/healthz" or "/livez") and the status code.
	Served func(path string, code int)
	// Changes is called when a change is queued and after every
	// successful sync, with the Tracker's Service and EndpointSlice
	// changes not yet synced and seen in all.
	Changes func(pending, total servicemap.ChangeCounts)
	// ProgrammingLatency is called after a successful sync for every
	// EndpointSlice change it programmed that carries a
	// last-change-trigger-time (since Run started), with the time from
	// then to the end of the sync (kube-proxy's network programming
	// duration).
	ProgrammingLatency func(backend string, d time.Duration)
}

// Counter is implemented by backends that can say how many objects of
// each kind they hold (rules per table, map elements, virtual servers...),
// for Metrics.Programmed. The Runner calls it from its goroutine after a
// successful sync; it must be cheap (counts kept by the sync, not a listing
// of the kernel).
type Counter interface {
	Programmed() map[string]int
}

// noLocal counts the service ports of a snapshot that drop Local-policy
// traffic (see Metrics.NoLocalEndpoints).
type noLocal struct{ internal, external int }

func (n *noLocal) add(p *servicemap.ServicePort, sign int) {
	pl := Plan(p)
	if pl.Internal.Local && pl.Internal.Verdict == Drop {
		n.internal += sign
	}
	if pl.Exposed && pl.External.Local && pl.External.Verdict == Drop {
		n.external += sign
	}
}

// count recomputes n for a full sync, or updates it from the changes of an
// incremental one.
func (n *noLocal) count(snap *servicemap.Snapshot, c *servicemap.Changes) {
	if c == nil {
		*n = noLocal{}
		for p := range snap.All() {
			n.add(p, 1)
		}
		return
	}
	for _, p := range c.Removed {
		n.add(p, -1)
	}
	for _, u := range c.Updated {
		n.add(u.Old, -1)
		n.add(u.New, 1)
	}
	for _, p := range c.Added {
		n.add(p, 1)
	}
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}
