// Package backends defines the small contract every lbkit data plane meets,
// and the pieces they share.
//
// A backend implements [Interface]: Sync brings the data plane to a
// servicemap.Snapshot and Cleanup removes what the backend created. A
// [Runner] drives a backend from a servicemap.Tracker: it coalesces bursts
// of events, resyncs on a period, retries failures as full syncs with
// backoff, and reports health.
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
