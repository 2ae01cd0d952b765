// Package conntrack clears stale UDP conntrack flows, as a step a backend
// (or whatever drives it) runs after every successful sync.
//
// UDP has no connection to end: once the kernel has a conntrack entry for a
// client's address and port, every later datagram of that client follows
// the entry, not the rules. Two kinds of entries go stale when endpoints
// change, and a [Cleaner] deletes both:
//
//   - An entry DNATed to an endpoint the service port no longer uses
//     (removed, not ready, no longer chosen by topology or a traffic
//     policy): without deletion the client keeps talking to the old
//     endpoint, or to whatever pod gets its address next.
//   - An entry that was not DNATed at all, to a service address and port
//     that now has endpoints: it was created while the service had none
//     (or before the rules existed), and would keep the client from ever
//     reaching the new endpoints.
//
// [Cleaner.Reconcile] works like kube-proxy's conntrack reconciler: it
// compares the kernel's table with a whole Snapshot, not with a diff, so it
// also repairs what an earlier failed or skipped cleanup left behind. It
// builds an index of every UDP frontend of the snapshot (cluster IP,
// external IPs and load-balancer IPs with the service port, and the node
// port on any node address) and the endpoints each one uses, then deletes
// the matching entries in one pass over the table.
//
// A whole snapshot cannot show a third kind: a flow DNATed through a
// frontend that is gone (a deleted service's cluster IP, kubernetes#141371),
// which keeps reaching the old pod although no rule mentions the address.
// [Cleaner.ReconcileChanges] also deletes those, from a Diff's
// StaleServices and StaleEndpoints; [WithCleanup] passes it the Diff of
// every sync (for a full sync, the Diff from the last snapshot it synced).
//
// Only UDP entries are touched: TCP and SCTP connections end by themselves.
// Unlike kube-proxy, which keeps flows to every serving endpoint, "used"
// means [servicemap.ServicePort.UsedEndpoints]: the endpoints this node's
// rules can send new traffic to. This matches the StaleEndpoints of
// [servicemap.Diff].
//
// The conntrack table is per network namespace. A Cleaner works in the
// namespace of its Options.Handle, or, without one, in the namespace of the
// calling thread (lock the goroutine to its thread to aim it at another
// namespace). It needs CAP_NET_ADMIN. Off Linux, New returns an error
// wrapping backends.ErrNotSupported.
package conntrack
