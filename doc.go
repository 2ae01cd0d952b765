// Package lbkit resolves Kubernetes Services to their backends and programs
// the Linux kernel's load balancers, as a library. It holds no code; this
// comment is the map.
//
// A Service IP is virtual: it exists only in rules that a proxy writes into
// every node's kernel. kube-proxy watches Services and EndpointSlices,
// decides which endpoints are usable from its node, and writes those rules;
// its logic lives inside kubernetes/kubernetes and cannot be imported. lbkit
// splits the same work into packages with one job each.
//
// Events come in from any source (client-go informers, a fake clientset, a
// YAML file, a test) and go to a [github.com/lbkit/lbkit/servicemap.Tracker].
// The Tracker parses each EndpointSlice once with package endpoints, which
// merges the slices of a service and deduplicates addresses, and decides per
// service port, with package topology, which endpoints this node uses for
// cluster-policy and for local-policy traffic. Package affinity reads
// ClientIP session affinity. The Tracker's Snapshot is an immutable,
// versioned map of every service port the node programs; successive
// snapshots share unchanged services, so a snapshot after one change costs
// the same at any cluster size. servicemap.Diff says what changed between two
// snapshots, including the UDP conntrack flows that went stale.
//
// Data planes implement the small backends.Interface: bring the kernel to a
// snapshot, and clean up. backends.Runner drives one from a Tracker,
// coalescing bursts of events, resyncing periodically and retrying failures
// as full syncs. Backends first render the desired state as deterministic
// text, then apply only what changed; backends/backendtest proves them with
// real packets through network namespaces.
//
// The resolution packages (endpoints, topology, affinity, servicemap) are
// pure: no kernel, clock, environment or global state. The same events give
// the same snapshots.
package lbkit
