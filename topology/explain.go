package topology

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lbkit/lbkit/endpoints"
)

// Explanation says, for people, why Categorize decided what it did for one
// service port on one node: which topology mode applies and why, and for
// every endpoint whether each list uses it and, when not, why not. It is
// what `lbctl explain` prints.
type Explanation struct {
	// Result is Categorize's result for the same input.
	Result Result
	// ModeReason says why Result.Mode applies, or why hints were ignored
	// ("" when no ready endpoint carries hints or the Cluster list is not
	// used).
	ModeReason string
	// ClusterFallback and LocalFallback report that the list is made of
	// serving terminating endpoints because no endpoint qualified as ready.
	ClusterFallback, LocalFallback bool
	// Endpoints are the input endpoints in order, each with its verdicts.
	Endpoints []EndpointVerdict
}

// EndpointVerdict is what the lists do with one endpoint.
type EndpointVerdict struct {
	Endpoint endpoints.Endpoint
	// InCluster and InLocal report that the Cluster or Local list holds
	// the endpoint.
	InCluster, InLocal bool
	// ClusterReason and LocalReason say why a list the port uses leaves
	// the endpoint out; "" when it holds it or the port does not use that
	// list.
	ClusterReason, LocalReason string
}

// Reasons an endpoint is left out of a list.
const (
	ReasonNotServing             = "not ready and not serving"
	ReasonNotReady               = "not ready"
	ReasonTerminatingWhileReady  = "terminating while ready endpoints exist"
	ReasonNotLocal               = "not on this node (Local policy)"
	ReasonTerminatingWhileLocal  = "terminating while ready local endpoints exist"
	reasonZoneHintFormat         = "zone hint for %s while this node is in %s"
	reasonNodeHintFormat         = "node hint for %s, not this node (%s)"
	reasonZonelessNodeZoneFormat = "zone hint for %s while this node has no zone"
)

// Explain returns the explanation of Categorize(eps, p, node).
func Explain(eps []endpoints.Endpoint, p Policy, node Node) Explanation {
	x := Explanation{Result: Categorize(eps, p, node), Endpoints: make([]EndpointVerdict, len(eps))}
	r := &x.Result
	anyReady := slices.ContainsFunc(eps, func(ep endpoints.Endpoint) bool { return ep.Ready })
	if p.UsesClusterEndpoints() {
		_, x.ModeReason = hintMode(eps, node)
		x.ClusterFallback = !anyReady && len(r.Cluster) > 0
	}
	anyLocalReady := slices.ContainsFunc(eps, func(ep endpoints.Endpoint) bool { return ep.Ready && ep.Local })
	if p.UsesLocalEndpoints() {
		x.LocalFallback = !anyLocalReady && len(r.Local) > 0
	}
	for i, ep := range eps {
		v := EndpointVerdict{Endpoint: ep}
		v.InCluster = contains(r.Cluster, ep)
		v.InLocal = contains(r.Local, ep)
		if r.Cluster != nil && !v.InCluster {
			v.ClusterReason = whyNot(&ep, anyReady, r.Mode, node)
		}
		if r.Local != nil && !v.InLocal {
			switch {
			case !ep.Local:
				v.LocalReason = ReasonNotLocal
			case !ep.Ready && ep.Serving && ep.Terminating && anyLocalReady:
				v.LocalReason = ReasonTerminatingWhileLocal
			default:
				v.LocalReason = notUsable(&ep)
			}
		}
		x.Endpoints[i] = v
	}
	return x
}

// whyNot says why the Cluster list leaves ep out.
func whyNot(ep *endpoints.Endpoint, anyReady bool, mode string, node Node) string {
	switch {
	case !ep.Ready && ep.Serving && ep.Terminating && anyReady:
		return ReasonTerminatingWhileReady
	case !ep.Ready:
		return notUsable(ep)
	case mode == ModePreferSameNode:
		return fmt.Sprintf(reasonNodeHintFormat, strings.Join(ep.NodeHints, ","), node.Name)
	case mode == ModePreferSameZone && node.Zone == "":
		return fmt.Sprintf(reasonZonelessNodeZoneFormat, strings.Join(ep.ZoneHints, ","))
	case mode == ModePreferSameZone:
		return fmt.Sprintf(reasonZoneHintFormat, strings.Join(ep.ZoneHints, ","), node.Zone)
	}
	return "" // not reached: a ready endpoint is left out only by topology
}

func notUsable(ep *endpoints.Endpoint) string {
	if ep.Serving {
		return ReasonNotReady
	}
	return ReasonNotServing
}

func contains(list []endpoints.Endpoint, ep endpoints.Endpoint) bool {
	return slices.ContainsFunc(list, func(e endpoints.Endpoint) bool { return e.Addr == ep.Addr })
}
