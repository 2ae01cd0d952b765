package topology

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/lbkit/lbkit/endpoints"
)

// The nodes the cases resolve for.
var (
	thisNode     = Node{Name: "node-1", Zone: "zone-a"}
	zonelessNode = Node{Name: "node-1"}
)

// ep builds an endpoint on another node that is neither ready nor serving;
// traits add what a case needs.
func ep(addr string, traits ...func(*endpoints.Endpoint)) endpoints.Endpoint {
	e := endpoints.Endpoint{Addr: netip.MustParseAddrPort(addr), NodeName: "node-2"}
	for _, t := range traits {
		t(&e)
	}
	return e
}

func ready(e *endpoints.Endpoint) { e.Ready, e.Serving = true, true }

// terminating is an endpoint that still serves while it shuts down.
func terminating(e *endpoints.Endpoint) { e.Serving, e.Terminating = true, true }

// stopping is an endpoint that shuts down and no longer serves.
func stopping(e *endpoints.Endpoint) { e.Terminating = true }

func local(e *endpoints.Endpoint) { e.NodeName, e.Local = thisNode.Name, true }

// zones and nodes set hints the way endpoints.ParseSlice leaves them:
// sorted, without duplicates.
func zones(z ...string) func(*endpoints.Endpoint) {
	z = slices.Compact(slices.Sorted(slices.Values(z)))
	return func(e *endpoints.Endpoint) { e.ZoneHints = z }
}

func nodes(n ...string) func(*endpoints.Endpoint) {
	n = slices.Compact(slices.Sorted(slices.Values(n)))
	return func(e *endpoints.Endpoint) { e.NodeHints = n }
}

// addrs lists endpoints as "ip:port" strings, keeping nil apart from empty
// so that cmp.Diff reports a nil list where an empty one was expected.
func addrs(eps []endpoints.Endpoint) []string {
	if eps == nil {
		return nil
	}
	out := make([]string, 0, len(eps))
	for _, e := range eps {
		out = append(out, e.String())
	}
	return out
}

// Port policies, named after the Service they come from.
var (
	clusterIP         = Policy{}
	internalLocal     = Policy{InternalLocal: true}
	nodePortETPLocal  = Policy{ExternalLocal: true, ExternallyAccessible: true}
	nodePortITPLocal  = Policy{InternalLocal: true, ExternallyAccessible: true}
	nodePortBothLocal = Policy{InternalLocal: true, ExternalLocal: true, ExternallyAccessible: true}
	// externalTrafficPolicy: Local on a port with no node port, external
	// IP or load-balancer IP.
	etpLocalInternalOnly = Policy{ExternalLocal: true}
)

type categorizeCase struct {
	name   string
	policy Policy
	node   Node
	eps    []endpoints.Endpoint
	// cluster and local are the expected lists: nil when the list must be
	// nil, []string{} when it must be empty but not nil.
	cluster, local []string
	// reach is Result.Reachable; when left nil it is whichever of cluster
	// and local is not nil.
	reach []string
	has   bool
	mode  string
}

// kubeProxyCases are the cases of kube-proxy's TestCategorizeEndpoints
// (pkg/proxy/topology_test.go), restated. Where kube-proxy reads a feature
// gate or the topology-mode annotation, lbkit behaves as with the gate on
// and hints honoured.
var kubeProxyCases = []categorizeCase{
	{
		name:   "zone hints on every endpoint and some for this zone: keep this zone's",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.1.2.3:80", ready, zones("zone-a")),
			ep("10.1.2.4:80", ready, zones("zone-b")),
			ep("10.1.2.5:80", ready, zones("zone-c")),
			ep("10.1.2.6:80", ready, zones("zone-a")),
		},
		cluster: []string{"10.1.2.3:80", "10.1.2.6:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		// kube-proxy once needed the service's topology annotation (or
		// the TopologyAwareHints gate) before reading hints; lbkit always
		// reads them, so the cases "annotation disabled/empty/aUto" and
		// "hints gate off" give this result too.
		name:   "hints are read without any annotation or feature gate",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.1.2.3:80", ready, zones("zone-a")),
			ep("10.1.2.4:80", ready, zones("zone-b")),
		},
		cluster: []string{"10.1.2.3:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		name:   "eTP Local on a node port: Local ignores zone hints, Cluster honours them",
		policy: nodePortETPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.1.2.3:80", ready, local, zones("zone-a")),
			ep("10.1.2.4:80", ready, local, zones("zone-b")),
			ep("10.1.2.5:80", ready, zones("zone-c")),
			ep("10.1.2.6:80", ready, zones("zone-a")),
		},
		cluster: []string{"10.1.2.3:80", "10.1.2.6:80"},
		local:   []string{"10.1.2.3:80", "10.1.2.4:80"},
		reach:   []string{"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		name:   "iTP Local on a node port: Local ignores zone hints, Cluster honours them",
		policy: nodePortITPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.1.2.3:80", ready, local, zones("zone-a")),
			ep("10.1.2.4:80", ready, local, zones("zone-b")),
			ep("10.1.2.5:80", ready, zones("zone-c")),
			ep("10.1.2.6:80", ready, zones("zone-a")),
		},
		cluster: []string{"10.1.2.3:80", "10.1.2.6:80"},
		local:   []string{"10.1.2.3:80", "10.1.2.4:80"},
		reach:   []string{"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		// Covers kube-proxy's "empty node labels" and "empty zone label":
		// both reach lbkit as Node.Zone == "".
		name:   "node without a zone label matches no zone hint",
		policy: clusterIP, node: zonelessNode,
		eps: []endpoints.Endpoint{
			ep("10.1.2.3:80", ready, zones("zone-a")),
		},
		cluster: []string{"10.1.2.3:80"},
		has:     true, mode: ModeNone,
	},
	{
		name:   "hints only for another zone: ignored",
		policy: clusterIP, node: Node{Name: "node-1", Zone: "zone-b"},
		eps: []endpoints.Endpoint{
			ep("10.1.2.3:80", ready, zones("zone-a")),
		},
		cluster: []string{"10.1.2.3:80"},
		has:     true, mode: ModeNone,
	},
	{
		name:   "an unready endpoint hinted for this zone is left out",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.1.2.3:80", ready, zones("zone-a")),
			ep("10.1.2.4:80", ready, zones("zone-b")),
			ep("10.1.2.5:80", ready, zones("zone-c")),
			ep("10.1.2.6:80", zones("zone-a")),
		},
		cluster: []string{"10.1.2.3:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		name:   "only unready endpoints hinted for this zone: hints ignored",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.1.2.3:80", zones("zone-a")),
			ep("10.1.2.4:80", ready, zones("zone-b")),
			ep("10.1.2.5:80", ready, zones("zone-c")),
			ep("10.1.2.6:80", zones("zone-a")),
		},
		cluster: []string{"10.1.2.4:80", "10.1.2.5:80"},
		has:     true, mode: ModeNone,
	},
	{
		name:   "one ready endpoint without zone hints: hints ignored",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.1.2.3:80", ready, zones("zone-a")),
			ep("10.1.2.4:80", ready, zones("zone-b")),
			ep("10.1.2.5:80", ready),
			ep("10.1.2.6:80", ready, zones("zone-a")),
		},
		cluster: []string{"10.1.2.3:80", "10.1.2.4:80", "10.1.2.5:80", "10.1.2.6:80"},
		has:     true, mode: ModeNone,
	},
	{
		name:   "endpoints hinted for several zones match any of them",
		policy: clusterIP, node: Node{Name: "node-1", Zone: "zone-c"},
		eps: []endpoints.Endpoint{
			ep("10.1.2.3:80", ready, zones("zone-a", "zone-b", "zone-c")),
			ep("10.1.2.4:80", ready, zones("zone-b", "zone-c")),
			ep("10.1.2.5:80", ready, zones("zone-b", "zone-d")),
			ep("10.1.2.6:80", ready, zones("zone-c")),
		},
		cluster: []string{"10.1.2.3:80", "10.1.2.4:80", "10.1.2.6:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		name:   "zone topology and locality disagree: reachable is the union",
		policy: nodePortETPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", ready, local, zones("zone-a")),
			ep("10.0.0.1:80", ready, local, zones("zone-b")),
			ep("10.0.0.2:80", ready, zones("zone-a")),
			ep("10.0.0.3:80", ready, zones("zone-b")),
		},
		cluster: []string{"10.0.0.0:80", "10.0.0.2:80"},
		local:   []string{"10.0.0.0:80", "10.0.0.1:80"},
		reach:   []string{"10.0.0.0:80", "10.0.0.1:80", "10.0.0.2:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		// kube-proxy returns nil for both lists here; lbkit returns an
		// empty Local list because the port uses Local policy.
		name:   "iTP Local, no endpoints at all",
		policy: internalLocal, node: thisNode,
		eps:     []endpoints.Endpoint{},
		cluster: nil,
		local:   []string{},
		has:     false,
	},
	{
		name:   "iTP Local, every endpoint on another node: drop, not reject",
		policy: internalLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", ready),
			ep("10.0.0.1:80", ready),
		},
		cluster: nil,
		local:   []string{},
		has:     true,
	},
	{
		name:   "iTP Local, every endpoint local",
		policy: internalLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", ready, local),
			ep("10.0.0.1:80", ready, local),
		},
		cluster: nil,
		local:   []string{"10.0.0.0:80", "10.0.0.1:80"},
		has:     true,
	},
	{
		name:   "iTP Local, some endpoints local",
		policy: internalLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", ready, local),
			ep("10.0.0.1:80", ready),
		},
		cluster: nil,
		local:   []string{"10.0.0.0:80"},
		has:     true,
	},
	{
		name:   "Cluster policy, nothing ready: reject",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80"),
			ep("10.0.0.1:80"),
		},
		cluster: []string{},
		has:     false,
	},
	{
		name:   "Cluster policy, some endpoints ready",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80"),
			ep("10.0.0.1:80", ready),
		},
		cluster: []string{"10.0.0.1:80"},
		has:     true,
	},
	{
		// kube-proxy's "PTE disabled" variant expected no endpoints; the
		// fallback to serving-terminating endpoints is always on in lbkit.
		name:   "Cluster policy, every endpoint terminating: fall back to them",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", terminating, local),
			ep("10.0.0.1:80", terminating),
		},
		cluster: []string{"10.0.0.0:80", "10.0.0.1:80"},
		has:     true,
	},
	{
		name:   "iTP Local, eTP Cluster on a node port, some endpoints local",
		policy: nodePortITPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", ready, local),
			ep("10.0.0.1:80", ready),
		},
		cluster: []string{"10.0.0.0:80", "10.0.0.1:80"},
		local:   []string{"10.0.0.0:80"},
		reach:   []string{"10.0.0.0:80", "10.0.0.1:80"},
		has:     true,
	},
	{
		name:   "iTP Cluster, eTP Local on a node port, some endpoints local",
		policy: nodePortETPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", ready, local),
			ep("10.0.0.1:80", ready),
		},
		cluster: []string{"10.0.0.0:80", "10.0.0.1:80"},
		local:   []string{"10.0.0.0:80"},
		reach:   []string{"10.0.0.0:80", "10.0.0.1:80"},
		has:     true,
	},
	{
		name:   "iTP Local, eTP Local on a node port, some endpoints local",
		policy: nodePortBothLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", ready, local),
			ep("10.0.0.1:80", ready),
		},
		cluster: []string{"10.0.0.0:80", "10.0.0.1:80"},
		local:   []string{"10.0.0.0:80"},
		reach:   []string{"10.0.0.0:80", "10.0.0.1:80"},
		has:     true,
	},
	{
		name:   "iTP Local, eTP Local on a node port, every endpoint remote",
		policy: nodePortBothLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", ready),
			ep("10.0.0.1:80", ready),
		},
		cluster: []string{"10.0.0.0:80", "10.0.0.1:80"},
		local:   []string{},
		reach:   []string{"10.0.0.0:80", "10.0.0.1:80"},
		has:     true,
	},
	{
		// kube-proxy's "PTE disabled" variant expected all lists empty.
		name:   "iTP Local, eTP Local on a node port, every endpoint remote and terminating",
		policy: nodePortBothLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", terminating),
			ep("10.0.0.1:80", terminating),
		},
		cluster: []string{"10.0.0.0:80", "10.0.0.1:80"},
		local:   []string{},
		reach:   []string{"10.0.0.0:80", "10.0.0.1:80"},
		has:     true,
	},
	{
		// kube-proxy's "PTE disabled" variant expected Local to stay empty.
		name:   "eTP Local: Cluster keeps the ready endpoint, Local falls back to the local terminating one",
		policy: nodePortETPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", ready),
			ep("10.0.0.1:80", local),
			ep("10.0.0.2:80", terminating, local),
			ep("10.0.0.3:80", terminating),
		},
		cluster: []string{"10.0.0.0:80"},
		local:   []string{"10.0.0.2:80"},
		reach:   []string{"10.0.0.0:80", "10.0.0.2:80"},
		has:     true,
	},
	{
		name:   "eTP Local is ignored when the port is not externally accessible",
		policy: etpLocalInternalOnly, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", ready),
			ep("10.0.0.1:80", ready, local),
		},
		cluster: []string{"10.0.0.0:80", "10.0.0.1:80"},
		local:   nil,
		has:     true,
	},
	{
		name:   "iTP Local on an internal-only port computes no Cluster list",
		policy: internalLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.0:80", ready),
			ep("10.0.0.1:80", ready, local),
		},
		cluster: nil,
		local:   []string{"10.0.0.1:80"},
		has:     true,
	},
}

// nodeHintCases cover trafficDistribution: PreferSameNode, which
// kube-proxy reads from node hints (topologyModeFromHints) since v1.33.
var nodeHintCases = []categorizeCase{
	{
		name:   "node hints on every ready endpoint and one for this node: keep this node's",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, local, nodes("node-1"), zones("zone-a")),
			ep("10.0.0.2:80", ready, nodes("node-2"), zones("zone-a")),
			ep("10.0.0.3:80", ready, nodes("node-3"), zones("zone-b")),
		},
		cluster: []string{"10.0.0.1:80"},
		has:     true, mode: ModePreferSameNode,
	},
	{
		name:   "an endpoint hinted for several nodes serves each of them",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, nodes("node-2")),
			ep("10.0.0.2:80", ready, nodes("node-1", "node-2")),
			ep("10.0.0.3:80", ready, nodes("node-3")),
		},
		cluster: []string{"10.0.0.2:80"},
		has:     true, mode: ModePreferSameNode,
	},
	{
		name:   "node hints, none for this node: fall back to zone hints",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, nodes("node-2"), zones("zone-a")),
			ep("10.0.0.2:80", ready, nodes("node-3"), zones("zone-b")),
		},
		cluster: []string{"10.0.0.1:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		name:   "one ready endpoint without a node hint: node hints ignored, zone hints used",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, local, nodes("node-1"), zones("zone-b")),
			ep("10.0.0.2:80", ready, zones("zone-a")),
			ep("10.0.0.3:80", ready, nodes("node-3"), zones("zone-a")),
		},
		cluster: []string{"10.0.0.2:80", "10.0.0.3:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		name:   "node hints incomplete and zone hints incomplete: no topology",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, local, nodes("node-1")),
			ep("10.0.0.2:80", ready, zones("zone-a")),
		},
		cluster: []string{"10.0.0.1:80", "10.0.0.2:80"},
		has:     true, mode: ModeNone,
	},
	{
		name:   "node hints only for other nodes and no zone hints: no topology",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, nodes("node-2")),
			ep("10.0.0.2:80", ready, nodes("node-3")),
		},
		cluster: []string{"10.0.0.1:80", "10.0.0.2:80"},
		has:     true, mode: ModeNone,
	},
	{
		name:   "unready endpoints do not need node hints and are not used",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, local, nodes("node-1")),
			ep("10.0.0.2:80"),
			ep("10.0.0.3:80", terminating, local, nodes("node-1")),
			ep("10.0.0.4:80", ready, nodes("node-2")),
		},
		cluster: []string{"10.0.0.1:80"},
		has:     true, mode: ModePreferSameNode,
	},
	{
		name:   "a node with no name matches no node hint",
		policy: clusterIP, node: Node{Zone: "zone-a"},
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, nodes("node-1"), zones("zone-a")),
			ep("10.0.0.2:80", ready, nodes("node-2"), zones("zone-b")),
		},
		cluster: []string{"10.0.0.1:80"},
		has:     true, mode: ModePreferSameZone,
	},
	{
		name:   "iTP Local with node hints: Local lists every local ready endpoint",
		policy: nodePortITPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", ready, local, nodes("node-1")),
			ep("10.0.0.2:80", ready, local, nodes("node-2")),
			ep("10.0.0.3:80", ready, nodes("node-3")),
		},
		cluster: []string{"10.0.0.1:80"},
		local:   []string{"10.0.0.1:80", "10.0.0.2:80"},
		reach:   []string{"10.0.0.1:80", "10.0.0.2:80"},
		has:     true, mode: ModePreferSameNode,
	},
}

// fallbackCases check that the serving-terminating fallback is decided
// separately for the Cluster and the Local list, and which endpoints count
// as existing somewhere.
var fallbackCases = []categorizeCase{
	{
		name:   "no ready endpoint anywhere: both lists fall back",
		policy: nodePortETPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", terminating, local),
			ep("10.0.0.2:80", terminating),
			ep("10.0.0.3:80", stopping, local),
		},
		cluster: []string{"10.0.0.1:80", "10.0.0.2:80"},
		local:   []string{"10.0.0.1:80"},
		reach:   []string{"10.0.0.1:80", "10.0.0.2:80"},
		has:     true,
	},
	{
		name:   "Local prefers a local ready endpoint to a local terminating one",
		policy: nodePortETPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", terminating, local),
			ep("10.0.0.2:80", ready, local),
			ep("10.0.0.3:80", ready),
		},
		cluster: []string{"10.0.0.2:80", "10.0.0.3:80"},
		local:   []string{"10.0.0.2:80"},
		reach:   []string{"10.0.0.2:80", "10.0.0.3:80"},
		has:     true,
	},
	{
		name:   "Cluster falls back while a ready endpoint exists nowhere, Local uses the local terminating one",
		policy: nodePortBothLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", terminating),
			ep("10.0.0.2:80", terminating, local),
		},
		cluster: []string{"10.0.0.1:80", "10.0.0.2:80"},
		local:   []string{"10.0.0.2:80"},
		reach:   []string{"10.0.0.1:80", "10.0.0.2:80"},
		has:     true,
	},
	{
		name:   "the terminating fallback ignores zone hints",
		policy: clusterIP, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", terminating, zones("zone-a")),
			ep("10.0.0.2:80", terminating, zones("zone-b")),
		},
		cluster: []string{"10.0.0.1:80", "10.0.0.2:80"},
		has:     true, mode: ModeNone,
	},
	{
		name:   "iTP Local, only remote terminating endpoints: they exist, so drop",
		policy: internalLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", terminating),
		},
		local: []string{},
		has:   true,
	},
	{
		name:   "terminating endpoints that no longer serve do not count anywhere",
		policy: nodePortETPLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", stopping, local),
			ep("10.0.0.2:80", stopping),
		},
		cluster: []string{},
		local:   []string{},
		reach:   []string{},
		has:     false,
	},
	{
		name:   "iTP Local, local endpoint neither ready nor terminating: reject",
		policy: internalLocal, node: thisNode,
		eps: []endpoints.Endpoint{
			ep("10.0.0.1:80", local),
		},
		local: []string{},
		has:   false,
	},
	{
		name:   "no endpoints, Cluster policy: empty Cluster list, no Local list",
		policy: clusterIP, node: thisNode,
		eps:     nil,
		cluster: []string{},
		has:     false,
	},
	{
		name:   "no endpoints, both policies used: both lists empty",
		policy: nodePortETPLocal, node: thisNode,
		eps:     nil,
		cluster: []string{},
		local:   []string{},
		reach:   []string{},
		has:     false,
	},
}

func TestCategorize(t *testing.T) {
	groups := []struct {
		name  string
		cases []categorizeCase
	}{
		{"kube-proxy", kubeProxyCases},
		{"node hints", nodeHintCases},
		{"fallback", fallbackCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.cases {
				t.Run(tc.name, func(t *testing.T) { checkCategorize(t, tc) })
			}
		})
	}
}

func checkCategorize(t *testing.T, tc categorizeCase) {
	t.Helper()
	if !slices.IsSortedFunc(tc.eps, endpoints.Compare) {
		t.Fatalf("bad case: endpoints must be sorted by address, as endpoints.Merge returns them")
	}
	reach := tc.reach
	switch {
	case reach != nil:
	case tc.local == nil:
		reach = tc.cluster
	case tc.cluster == nil:
		reach = tc.local
	default:
		t.Fatalf("bad case: both lists are used, so reach must be given")
	}
	in := slices.Clone(tc.eps)

	r := Categorize(tc.eps, tc.policy, tc.node)

	if diff := cmp.Diff(tc.cluster, addrs(r.Cluster)); diff != "" {
		t.Errorf("Cluster (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(tc.local, addrs(r.Local)); diff != "" {
		t.Errorf("Local (-want +got):\n%s", diff)
	}
	// Reachable's doc promises a union, not a nil-versus-empty meaning.
	if diff := cmp.Diff(reach, addrs(r.Reachable()), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Reachable (-want +got):\n%s", diff)
	}
	if r.HasEndpoints != tc.has {
		t.Errorf("HasEndpoints = %v, want %v", r.HasEndpoints, tc.has)
	}
	if r.Mode != tc.mode {
		t.Errorf("Mode = %q, want %q", r.Mode, tc.mode)
	}
	if !endpoints.EqualLists(in, tc.eps) {
		t.Errorf("Categorize modified its input")
	}
}

// Categorize keeps the order of its input, whatever the policy.
func TestCategorizeKeepsAddressOrder(t *testing.T) {
	eps := []endpoints.Endpoint{
		ep("10.0.0.2:80", ready, local, zones("zone-a")),
		ep("10.0.0.10:80", ready, zones("zone-a")),
		ep("10.0.1.1:80", ready, local, zones("zone-b")),
		ep("[fd00::1]:80", ready, zones("zone-a")),
	}
	r := Categorize(eps, nodePortBothLocal, thisNode)
	for name, list := range map[string][]endpoints.Endpoint{"Cluster": r.Cluster, "Local": r.Local, "Reachable": r.Reachable()} {
		if !slices.IsSortedFunc(list, endpoints.Compare) {
			t.Errorf("%s not sorted: %v", name, addrs(list))
		}
	}
	want := []string{"10.0.0.2:80", "10.0.0.10:80", "10.0.1.1:80", "[fd00::1]:80"}
	if diff := cmp.Diff(want, addrs(r.Reachable())); diff != "" {
		t.Errorf("Reachable (-want +got):\n%s", diff)
	}
}

// The common case, every endpoint ready and no hints, must not copy the
// list: Categorize sits on the path of every endpoint change.
func TestCategorizeAllReadyAllocatesNothing(t *testing.T) {
	eps := make([]endpoints.Endpoint, 10)
	for i := range eps {
		eps[i] = ep(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 80).String(), ready)
	}
	var r Result
	allocs := testing.AllocsPerRun(100, func() { r = Categorize(eps, clusterIP, thisNode) })
	if allocs != 0 {
		t.Errorf("Categorize allocated %v times per run, want 0", allocs)
	}
	if len(r.Cluster) != len(eps) || &r.Cluster[0] != &eps[0] {
		t.Errorf("Cluster is a copy of the input, want the input itself")
	}
}

func TestResultReachable(t *testing.T) {
	a := ep("10.0.0.1:80", ready)
	b := ep("10.0.0.2:80", ready, local)
	c := ep("10.0.0.3:80", terminating, local)
	d := ep("10.0.0.10:80", ready)
	shared := []endpoints.Endpoint{a, b}
	tests := []struct {
		name string
		r    Result
		want []string
	}{
		{"zero Result", Result{}, nil},
		{"Cluster only", Result{Cluster: []endpoints.Endpoint{a, b}}, []string{"10.0.0.1:80", "10.0.0.2:80"}},
		{"Local only", Result{Local: []endpoints.Endpoint{b, c}}, []string{"10.0.0.2:80", "10.0.0.3:80"}},
		{"both empty", Result{Cluster: []endpoints.Endpoint{}, Local: []endpoints.Endpoint{}}, []string{}},
		{"empty Local", Result{Cluster: []endpoints.Endpoint{a, d}, Local: []endpoints.Endpoint{}}, []string{"10.0.0.1:80", "10.0.0.10:80"}},
		{"empty Cluster", Result{Cluster: []endpoints.Endpoint{}, Local: []endpoints.Endpoint{c}}, []string{"10.0.0.3:80"}},
		{"same list", Result{Cluster: shared, Local: shared}, []string{"10.0.0.1:80", "10.0.0.2:80"}},
		{"Local a subset", Result{Cluster: []endpoints.Endpoint{a, b, d}, Local: []endpoints.Endpoint{b}}, []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.10:80"}},
		{"overlap", Result{Cluster: []endpoints.Endpoint{a, b, d}, Local: []endpoints.Endpoint{b, c}}, []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.10:80"}},
		{"disjoint, interleaved", Result{Cluster: []endpoints.Endpoint{a, d}, Local: []endpoints.Endpoint{b, c}}, []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.10:80"}},
		{"Local a prefix of Cluster's memory", Result{Cluster: shared, Local: shared[:1]}, []string{"10.0.0.1:80", "10.0.0.2:80"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cluster, loc := slices.Clone(tt.r.Cluster), slices.Clone(tt.r.Local)
			if diff := cmp.Diff(tt.want, addrs(tt.r.Reachable())); diff != "" {
				t.Errorf("Reachable (-want +got):\n%s", diff)
			}
			if !endpoints.EqualLists(cluster, tt.r.Cluster) || !endpoints.EqualLists(loc, tt.r.Local) {
				t.Errorf("Reachable modified the Result")
			}
		})
	}
}
