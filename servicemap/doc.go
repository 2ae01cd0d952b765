// Package servicemap turns Services, EndpointSlices and the Node into
// immutable, versioned snapshots of every service port a node programs, and
// computes exact differences between them.
//
// A [Tracker] consumes events (directly, or from client-go informers through
// [Tracker.ServiceHandler], [Tracker.EndpointSliceHandler] and
// [Tracker.NodeHandler]) and produces a [Snapshot] on demand. A [Snapshot] is
// immutable and safe to share; successive snapshots share every unchanged
// service, so taking one after a single EndpointSlice change costs the same at
// 100 services as at 10,000. [Diff] lists what changed between two snapshots,
// including the UDP conntrack flows that went stale; [Apply] is its inverse.
//
// What a Tracker handles, as kube-proxy does:
//
//   - Services of type ExternalName, headless Services (clusterIP None) and
//     Services without a cluster IP of the tracker's family are not
//     programmed.
//   - With no proxy name configured, Services labelled
//     service.kubernetes.io/service-proxy-name are skipped; with one, only
//     Services labelled with exactly that name are handled. EndpointSlices
//     labelled service.kubernetes.io/headless are ignored (the label selector
//     kube-proxy puts on its slice informer; its Service informer has none for
//     that label); a Service whose slices are ignored is still programmed,
//     with no endpoints.
//   - Of two ports with one name and protocol, the last listed is kept, as in
//     kube-proxy's map of ports (the API server refuses such a Service).
//   - Per port the snapshot carries the cluster IP of the tracker's family,
//     port, protocol, node port, external IPs, load-balancer ingress IPs
//     (except ipMode Proxy), trimmed loadBalancerSourceRanges, session
//     affinity, both traffic policies, healthCheckNodePort, all endpoints and
//     the topology decision (see package topology).
//
// Values that cannot be used are skipped with a [Warning] that
// [Tracker.Warnings] returns; nothing panics on bad input.
//
// The package reads no clock, environment or global state: the same events
// give the same snapshots.
package servicemap
