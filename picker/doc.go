// Package picker chooses an endpoint for a new connection or request in
// process, for service meshes and userspace proxies, with the same
// decisions as lbkit's kernel backends.
//
// A [Picker] follows a servicemap.Snapshot: built with [New], kept current
// with [Picker.Update] (or [Picker.Run] from a Tracker subscription), at a
// cost proportional to what changed. For each service port it serves the
// decision of backends.Plan: which endpoints cluster-IP and external
// traffic may use on this node (topology hints, traffic policies,
// terminating fallback), REJECT when the service has no usable endpoint,
// DROP when a Local policy leaves none here or a source range refuses the
// client, short-circuiting of pod and node traffic to an
// externalTrafficPolicy=Local address, and ClientIP session affinity with
// the Service's timeout.
//
// Among the endpoints a request may use, a [Policy] chooses: RoundRobin
// (the default), Random, LeastRequest (power of two choices over in-flight
// counts, released by [Result.Done]) or Maglev (consistent hashing on
// [Request.Key]).
//
// Concurrency: Pick, PickFrontend and PickNodePort are safe from many
// goroutines, take no lock and allocate nothing; the exception is a port
// with session affinity, whose table of clients has a mutex. Endpoints that
// stay in a port across updates keep their in-flight counts and affinity
// entries; a client stuck to an endpoint that left is re-picked.
package picker
