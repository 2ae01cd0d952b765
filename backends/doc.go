// Package backends defines the small contract every lbkit data plane meets,
// and the pieces they share.
//
// A backend implements [Interface]: Sync brings the data plane to a
// servicemap.Snapshot and Cleanup removes what the backend created. Two
// optional interfaces let a backend do better, and the [Runner] uses them
// when present: [ChangesSyncer] takes the Diff the Runner computed rather
// than computing it again, and [DriftChecker] tells cheaply whether the
// data plane was changed behind the backend's back.
//
// A [Runner] drives a backend from its own subscription to a
// servicemap.Tracker: it waits for the informers' event handlers to sync,
// coalesces bursts of events, bounds every sync with a deadline, recovers
// a backend's panic, retries failures as full syncs with backoff, repairs
// drift, resyncs on a period, and reports health that tells the truth (see
// [Health]), as a Go value and as /healthz.
//
// Errors: a Sync error of lbkit's backends wraps [ErrApply] and, when the
// cause is known, [ErrPermission], [ErrNotSupported] or [ErrTimeout]; test
// with errors.Is. [Classify] names the class of any error (for /healthz,
// which shows the class and never the text, and for metrics).
//
// Subpackages: nftables, iptables and ipvs are kernel backends; fake is an
// in-memory backend with real semantics for tests; conntrack clears stale
// UDP flows after a sync; healthcheck serves the health-check node ports of
// externalTrafficPolicy=Local services; backendtest is the conformance suite
// any backend can run against real packets.
//
// Backends render before they apply: the desired state is first computed as
// deterministic text (a pure function of the snapshot and options), so it
// can be golden-tested and shown to people, and only then applied.
package backends
