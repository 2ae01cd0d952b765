package topology

import (
	"testing"

	"github.com/lbkit/lbkit/endpoints"
)

// fidelityCases restate corner cases of kube-proxy v1.37's
// CategorizeEndpoints and topologyModeFromHints (pkg/proxy/topology.go) that
// its own TestCategorizeEndpoints does not list; each expectation is what
// that code returns for the same input. Hints reach Categorize already
// parsed, so the annotation values ("auto", "Auto", "disabled", "") and the
// trafficDistribution field play no part here: kube-proxy v1.37 reads only
// the hints, which the EndpointSlice controller writes from them.
var fidelityCases = []categorizeCase{
	{
		// topologyModeFromHints: ZoneHints().Has(zone) with zone "" matches
		// a hint naming "" (the API refuses such a hint; kube-proxy does
		// not check).
		name:   "zoneless node and a zone hint named \"\": same-zone applies",
		policy: clusterIP, node: zonelessNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, zones("")),
			ep("10.0.0.2:80", ready, zones("zone-a")),
		},
		cluster: []string{"10.0.0.1:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		name:   "nameless node and a node hint named \"\": same-node applies",
		policy: clusterIP, node: Node{Zone: "zone-a"},
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, nodes("")),
			ep("10.0.0.2:80", ready, nodes("node-2")),
		},
		cluster: []string{"10.0.0.1:80"},
		has:     true, mode: ModePreferSameNode,
	},
	{
		// availableForTopology looks at the hint, not where the endpoint
		// runs.
		name:   "PreferSameNode keeps an endpoint hinted for this node that runs elsewhere",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, nodes("node-1")),
			ep("10.0.0.2:80", ready, local, nodes("node-2")),
		},
		cluster: []string{"10.0.0.1:80"},
		has:     true, mode: ModePreferSameNode,
	},
	{
		// IsReady alone decides; terminating does not veto it.
		name:   "ready and terminating at once counts as ready",
		policy: nodePortETPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, terminating, local),
			ep("10.0.0.2:80", terminating),
		},
		cluster: []string{"10.0.0.1:80"},
		local:   []string{"10.0.0.1:80"},
		reach:   []string{"10.0.0.1:80"},
		has:     true,
	},
	{
		name:   "ready but not serving is used",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", func(e *endpoints.Endpoint) { e.Ready = true }),
		},
		cluster: []string{"10.0.0.1:80"},
		has:     true,
	},
	{
		// Only ready endpoints vote on the mode: a terminating endpoint
		// without hints does not switch zone topology off.
		name:   "terminating endpoints without hints do not disable zone hints",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, zones("zone-a")),
			ep("10.0.0.2:80", ready, zones("zone-b")),
			ep("10.0.0.3:80", terminating),
		},
		cluster: []string{"10.0.0.1:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		name:   "a terminating endpoint hinted for this zone does not enable zone hints",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, zones("zone-b")),
			ep("10.0.0.2:80", terminating, zones("zone-a")),
		},
		cluster: []string{"10.0.0.1:80"},
		has:     true, mode: ModeNone,
	},
	{
		name:   "eTP Local, local endpoints all stopped: Local empty, drop (ready ones exist)",
		policy: nodePortETPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", stopping, local),
			ep("10.0.0.2:80", ready),
		},
		cluster: []string{"10.0.0.2:80"},
		local:   []string{},
		reach:   []string{"10.0.0.2:80"},
		has:     true,
	},
	{
		// Both fallbacks and zone topology at once: the union is needed
		// (CategorizeEndpoints merges when topology or the Local fallback
		// is in play).
		name:   "zone topology for Cluster, terminating fallback for Local",
		policy: nodePortETPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", terminating, local, zones("zone-a")),
			ep("10.0.0.2:80", ready, zones("zone-a")),
			ep("10.0.0.3:80", ready, zones("zone-b")),
		},
		cluster: []string{"10.0.0.2:80"},
		local:   []string{"10.0.0.1:80"},
		reach:   []string{"10.0.0.1:80", "10.0.0.2:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		name:   "iTP Local and eTP Local on an internal-only port: Local only",
		policy: Policy{InternalLocal: true, ExternalLocal: true}, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, local),
			ep("10.0.0.2:80", ready),
		},
		local: []string{"10.0.0.1:80"},
		has:   true,
	},
	{
		// UsesClusterEndpoints: eTP Local on an externally accessible port
		// still needs Cluster endpoints (short-circuited traffic from the
		// node), and they honour hints.
		name:   "eTP Local, node hints: Cluster narrowed to this node, Local all local",
		policy: nodePortETPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, local, nodes("node-2")),
			ep("10.0.0.2:80", ready, nodes("node-1")),
		},
		cluster: []string{"10.0.0.2:80"},
		local:   []string{"10.0.0.1:80"},
		reach:   []string{"10.0.0.1:80", "10.0.0.2:80"},
		has:     true, mode: ModePreferSameNode,
	},
}

func TestCategorizeKubeProxyFidelity(t *testing.T) {
	for _, tc := range fidelityCases {
		t.Run(tc.name, func(t *testing.T) { checkCategorize(t, tc) })
	}
}
