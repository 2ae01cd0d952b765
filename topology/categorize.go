package topology

import (
	"slices"
	"strings"

	"github.com/lbkit/lbkit/endpoints"
)

// Node is the node being resolved for.
type Node struct {
	Name string
	// Zone is the node's topology.kubernetes.io/zone label ("" if none).
	Zone string
}

// Topology modes, named after the trafficDistribution values whose hints
// produce them.
const (
	ModeNone           = ""
	ModePreferSameZone = "PreferSameZone"
	ModePreferSameNode = "PreferSameNode"
)

// Result is the outcome of Categorize for one service port on one node.
// Its slices may share memory with Categorize's input and MUST NOT be
// modified.
type Result struct {
	// Cluster are the endpoints for Cluster-policy traffic. Nil when the
	// port never uses Cluster policy; empty but not nil when it does and no
	// endpoint is usable.
	Cluster []endpoints.Endpoint
	// Local are the endpoints for Local-policy traffic, with the same nil
	// versus empty distinction.
	Local []endpoints.Endpoint
	// HasEndpoints reports whether the service has a usable endpoint
	// anywhere in the cluster (ready, or serving and terminating). When it
	// is true but the list a packet would use is empty, the packet is
	// dropped; when it is false, it is rejected.
	HasEndpoints bool
	// Mode is the topology mode applied to Cluster endpoints.
	Mode string
}

// Reachable returns the union of Cluster and Local, sorted by address: every
// endpoint this node may send traffic to.
func (r Result) Reachable() []endpoints.Endpoint {
	switch {
	case r.Cluster == nil:
		return r.Local
	case r.Local == nil || sameList(r.Cluster, r.Local):
		return r.Cluster
	}
	all := make([]endpoints.Endpoint, 0, len(r.Cluster)+len(r.Local))
	all = append(all, r.Cluster...)
	for _, ep := range r.Local {
		if _, found := slices.BinarySearchFunc(r.Cluster, ep, endpoints.Compare); !found {
			all = append(all, ep)
		}
	}
	slices.SortFunc(all, endpoints.Compare)
	return all
}

func sameList(a, b []endpoints.Endpoint) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// Categorize decides, for one service port on one node, which of its
// endpoints (sorted by address, as endpoints.Merge returns them) serve
// Cluster-policy and Local-policy traffic. The rules, as kube-proxy applies
// them:
//
//  1. Cluster endpoints are computed only when the port uses them
//     (Policy.UsesClusterEndpoints), Local endpoints only when it uses
//     those (Policy.UsesLocalEndpoints); an unused list is nil.
//  2. Usable means ready. Only when no endpoint qualifies does a list fall
//     back to endpoints that are serving and terminating; the fallback is
//     decided separately for the Cluster and the Local list.
//  3. Topology applies to Cluster endpoints only, and is read from the hints
//     of ready endpoints:
//     PreferSameNode when every ready endpoint has a node hint and at least
//     one is hinted for this node: use the ready endpoints hinted for this
//     node. Otherwise PreferSameZone when every ready endpoint has a zone
//     hint and at least one is hinted for this node's zone: use the ready
//     endpoints hinted for this zone. Otherwise hints are ignored. A node
//     without a zone label (or a name) matches no hint but one naming ""
//     (which the API refuses), as in kube-proxy.
//  4. Topology never narrows Local endpoints: they are all local ready
//     endpoints (or, failing those, all local serving-terminating ones).
//  5. HasEndpoints is true when some endpoint is ready, or serving and
//     terminating, anywhere in the cluster. A port with HasEndpoints whose
//     list for a packet is empty drops that packet (the endpoints exist, just
//     not here); a port without it rejects.
func Categorize(eps []endpoints.Endpoint, p Policy, node Node) Result {
	var r Result
	if p.UsesClusterEndpoints() {
		r.Mode = modeFromHints(eps, node)
		r.Cluster = filter(eps, func(ep *endpoints.Endpoint) bool {
			return ep.Ready && availableForTopology(ep, r.Mode, node)
		})
		if len(r.Cluster) == 0 {
			// Topology falls back to "no hints" before this point when it
			// would leave nothing, so here no ready endpoint exists at all.
			r.Cluster = filter(eps, servingTerminating)
		}
		r.HasEndpoints = len(r.Cluster) > 0
	}
	if !p.UsesLocalEndpoints() {
		return r
	}

	var localReady, localTerminating bool
	for i := range eps {
		ep := &eps[i]
		switch {
		case ep.Ready:
			r.HasEndpoints = true
			localReady = localReady || ep.Local
		case servingTerminating(ep):
			r.HasEndpoints = true
			localTerminating = localTerminating || ep.Local
		}
	}
	switch {
	case localReady:
		r.Local = filter(eps, func(ep *endpoints.Endpoint) bool { return ep.Local && ep.Ready })
	case localTerminating:
		r.Local = filter(eps, func(ep *endpoints.Endpoint) bool { return ep.Local && servingTerminating(ep) })
	default:
		r.Local = []endpoints.Endpoint{}
	}
	return r
}

func servingTerminating(ep *endpoints.Endpoint) bool { return ep.Serving && ep.Terminating }

// modeFromHints picks the topology mode from the hints of ready endpoints
// (rule 3 of Categorize).
func modeFromHints(eps []endpoints.Endpoint, node Node) string {
	mode, _ := hintMode(eps, node)
	return mode
}

// hintMode is modeFromHints, with the reason for people: why the mode
// applies, or why hints present were ignored ("" when no ready endpoint has
// any).
func hintMode(eps []endpoints.Endpoint, node Node) (mode, reason string) {
	anyReady := false
	allNodeHints, anyNodeHints, forNode := true, false, false
	allZoneHints, anyZoneHints, forZone := true, false, false
	for i := range eps {
		ep := &eps[i]
		if !ep.Ready {
			continue
		}
		anyReady = true
		if len(ep.NodeHints) == 0 {
			allNodeHints = false
		} else {
			anyNodeHints = true
			forNode = forNode || ep.HasNodeHint(node.Name)
		}
		if len(ep.ZoneHints) == 0 {
			allZoneHints = false
		} else {
			anyZoneHints = true
			forZone = forZone || ep.HasZoneHint(node.Zone)
		}
	}
	if !anyReady {
		return ModeNone, ""
	}
	if allNodeHints && forNode {
		return ModePreferSameNode, "every ready endpoint has a node hint, some for this node"
	}
	var ignored []string
	switch {
	case allNodeHints:
		ignored = append(ignored, "node hints ignored: none is for this node")
	case anyNodeHints:
		ignored = append(ignored, "node hints ignored: a ready endpoint has none")
	}
	switch {
	case allZoneHints && forZone:
		return ModePreferSameZone, strings.Join(append(ignored, "every ready endpoint has a zone hint, some for zone "+node.Zone), "; ")
	case allZoneHints && node.Zone == "":
		ignored = append(ignored, "zone hints ignored: this node has no zone label")
	case allZoneHints:
		ignored = append(ignored, "zone hints ignored: none is for zone "+node.Zone)
	case anyZoneHints:
		ignored = append(ignored, "zone hints ignored: a ready endpoint has none")
	}
	return ModeNone, strings.Join(ignored, "; ")
}

func availableForTopology(ep *endpoints.Endpoint, mode string, node Node) bool {
	switch mode {
	case ModePreferSameNode:
		return ep.HasNodeHint(node.Name)
	case ModePreferSameZone:
		return ep.HasZoneHint(node.Zone)
	}
	return true
}

// filter returns the endpoints that keep reports true for. When all of them
// qualify it returns eps itself, so the common case allocates nothing; the
// result is never nil.
func filter(eps []endpoints.Endpoint, keep func(*endpoints.Endpoint) bool) []endpoints.Endpoint {
	first := -1
	for i := range eps {
		if !keep(&eps[i]) {
			first = i
			break
		}
	}
	if first < 0 {
		if eps == nil {
			return []endpoints.Endpoint{}
		}
		return eps
	}
	out := make([]endpoints.Endpoint, 0, len(eps)-1)
	out = append(out, eps[:first]...)
	for i := first + 1; i < len(eps); i++ {
		if keep(&eps[i]) {
			out = append(out, eps[i])
		}
	}
	return out
}
