// Package topology decides which endpoints of a service port a node uses.
//
// [Categorize] is a pure function with the semantics of kube-proxy's
// CategorizeEndpoints (Kubernetes v1.37); its doc comment states each rule.
// The package keeps no state and reads no clock, environment or feature
// gate: the behaviour kube-proxy enables by default (node hints for
// trafficDistribution PreferSameNode, zone hints) is always on.
package topology
