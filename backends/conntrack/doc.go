// Package conntrack clears stale UDP conntrack flows, as a step a backend
// (or whatever drives it) runs after every successful sync.
//
// UDP has no connection to end: once the kernel has a conntrack entry for a
// client's address and port, every later datagram of that client follows
// the entry, not the rules. Two kinds of entries go stale when endpoints
// change, and a [Cleaner] deletes both:
//
//   - An entry DNATed to an endpoint that is not a serving endpoint of the
//     service port (removed, or no longer serving): without deletion the
//     client keeps talking to the old endpoint, or to whatever pod gets its
//     address next. A service port without serving endpoints loses every
//     DNATed entry through it: its reject rule does not see them.
//   - An entry that was not DNATed at all, to a service address and port
//     (created before the rules existed, or to a host that had the
//     address before a Service claimed it as an external IP), or to a node
//     port that has serving endpoints: it would keep the client from ever
//     reaching the service.
//
// Like kube-proxy, "serving" is the endpoint's serving condition alone: an
// endpoint on any node, terminating or not, and whether or not topology or
// a traffic policy lets this node send new traffic to it, keeps its flows.
// A UDP flow then lives as long as a TCP connection would, and a change of
// hints or policies leaves existing flows alone.
//
// [Cleaner.Reconcile] works like kube-proxy's conntrack reconciler: it
// compares the kernel's table with a whole Snapshot, not with a diff, so it
// also repairs what an earlier failed or skipped cleanup left behind. It
// builds an index of every UDP frontend of the snapshot (cluster IP,
// external IPs and load-balancer IPs with the service port, and the node
// port on any node address) and the serving endpoints of each, then deletes
// the matching entries in one pass over the table.
//
// Where it differs from kube-proxy's (v1.37), on purpose:
//
//   - It runs after every successful sync of a snapshot with a UDP port
//     (or a removed one); kube-proxy skips the syncs in which no UDP
//     service's endpoints changed, and so may never repair what a failed
//     cleanup left.
//   - A flow to a service address and port is judged by that frontend
//     alone, and a cluster IP is never taken for a node address;
//     kube-proxy also judges such a flow as a node port flow when its port
//     number is some service's node port, and deletes it if the endpoint
//     is not that other service's.
//   - With Options.NodePortAddresses, only flows to those addresses are
//     node port flows; kube-proxy matches the port number on any address.
//   - A node port without serving endpoints loses its DNATed flows (they
//     can only be a service's); kube-proxy skips such a node port
//     altogether. Flows to it that were not DNATed are kept by both.
//
// A whole snapshot cannot show a third kind: a flow DNATed through a
// frontend that is gone (a deleted service's cluster IP, kubernetes#141371),
// which keeps reaching the old pod although no rule mentions the address.
// [Cleaner.ReconcileChanges] also deletes those, from a Diff's
// StaleServices and StaleEndpoints; [WithCleanup] passes it the Diff of
// every sync (for a full sync, the Diff from the last snapshot it synced).
// kube-proxy leaves them.
//
// Only UDP entries are touched, as in kube-proxy: TCP and SCTP connections
// end by themselves (Options.ReapTCP opts in to TCP entries of removed
// endpoints).
//
// The conntrack table is per network namespace. A Cleaner works in the
// namespace of its Options.Handle, or, without one, in the namespace of the
// calling thread (lock the goroutine to its thread to aim it at another
// namespace). It needs CAP_NET_ADMIN. Off Linux, New returns an error
// wrapping backends.ErrNotSupported.
package conntrack
