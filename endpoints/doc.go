// Package endpoints turns the EndpointSlices of a Service into the endpoints
// of each of its ports.
//
// It does what kube-proxy's EndpointSliceCache does, as pure functions:
// [ParseSlice] reads one EndpointSlice once, at the edge, into a compact
// immutable [Slice] (addresses parsed into netip values, conditions resolved,
// hints sorted), and [Merge] combines all Slices of one service into the
// endpoints of each port for one node.
//
// Rules, in the order they apply:
//
//   - A slice must carry the label kubernetes.io/service-name; a slice without
//     it, an FQDN slice, or a slice whose addressType is of the other IP family
//     is ignored with a [Warning].
//   - Conditions: a missing ready or serving means true; a missing terminating
//     means false (as the EndpointSlice API documents).
//   - Ports with no number (nil or 0), no name (nil; an unnamed port has the
//     name ""), or a protocol other than TCP, UDP or SCTP, are skipped with a
//     warning, as kube-proxy skips them. A nil protocol is TCP, the API
//     server's default.
//   - Only the first address of an endpoint is used, as Kubernetes does. IPv4
//     text with leading zeros ("010.1.2.3") is read as decimal, as Kubernetes'
//     own parser does, never as octal.
//   - An address listed twice in one slice is kept once, as kube-proxy reads
//     the slice in order: a later copy replaces the earlier one unless it is
//     terminating (reported with a warning).
//   - The same address:port listed in several slices appears once, and stays
//     while any slice lists it. Between copies Merge prefers non-terminating
//     (kube-proxy's one rule), then ready, then serving, then a local copy,
//     then the copy from the slice whose name sorts first, so the result
//     never depends on the order in which slices were seen.
//   - Local means the endpoint's nodeName is the node being resolved for (an
//     empty node name makes nothing local).
//
// Everything in this package is immutable once returned and safe to share
// between goroutines. It reads no clock, environment or global state.
package endpoints
