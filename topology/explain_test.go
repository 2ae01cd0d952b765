package topology

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lbkit/lbkit/endpoints"
)

// TestExplainReasons checks the words for each rule of Categorize.
func TestExplainReasons(t *testing.T) {
	type verdict struct{ Cluster, Local string }
	tests := []struct {
		name     string
		eps      []endpoints.Endpoint
		policy   Policy
		node     Node
		mode     string
		why      string
		verdicts map[string]verdict // by address; "+" = in the list
	}{{
		name:   "not ready, terminating while ready exist, ready",
		eps:    []endpoints.Endpoint{ep("10.0.0.1:80", ready), ep("10.0.0.2:80"), ep("10.0.0.3:80", terminating), ep("10.0.0.4:80", stopping)},
		policy: clusterIP, node: thisNode,
		verdicts: map[string]verdict{
			"10.0.0.1:80": {Cluster: "+"},
			"10.0.0.2:80": {Cluster: ReasonNotServing},
			"10.0.0.3:80": {Cluster: ReasonTerminatingWhileReady},
			"10.0.0.4:80": {Cluster: ReasonNotServing},
		},
	}, {
		name:   "zone hints narrow the cluster list",
		eps:    []endpoints.Endpoint{ep("10.0.0.1:80", ready, zones("zone-a")), ep("10.0.0.2:80", ready, zones("zone-b")), ep("10.0.0.3:80", ready, zones("zone-a", "zone-c"))},
		policy: clusterIP, node: thisNode, mode: ModePreferSameZone,
		why: "every ready endpoint has a zone hint, some for zone zone-a",
		verdicts: map[string]verdict{
			"10.0.0.1:80": {Cluster: "+"},
			"10.0.0.2:80": {Cluster: "zone hint for zone-b while this node is in zone-a"},
			"10.0.0.3:80": {Cluster: "+"},
		},
	}, {
		name:   "zone hints ignored: one ready endpoint has none",
		eps:    []endpoints.Endpoint{ep("10.0.0.1:80", ready, zones("zone-a")), ep("10.0.0.2:80", ready)},
		policy: clusterIP, node: thisNode,
		why:      "zone hints ignored: a ready endpoint has none",
		verdicts: map[string]verdict{"10.0.0.1:80": {Cluster: "+"}, "10.0.0.2:80": {Cluster: "+"}},
	}, {
		name:   "zone hints ignored: none for this zone",
		eps:    []endpoints.Endpoint{ep("10.0.0.1:80", ready, zones("zone-b"))},
		policy: clusterIP, node: thisNode,
		why:      "zone hints ignored: none is for zone zone-a",
		verdicts: map[string]verdict{"10.0.0.1:80": {Cluster: "+"}},
	}, {
		name:   "zone hints ignored: node without zone",
		eps:    []endpoints.Endpoint{ep("10.0.0.1:80", ready, zones("zone-a"))},
		policy: clusterIP, node: zonelessNode,
		why:      "zone hints ignored: this node has no zone label",
		verdicts: map[string]verdict{"10.0.0.1:80": {Cluster: "+"}},
	}, {
		name:   "node hints win over zone hints",
		eps:    []endpoints.Endpoint{ep("10.0.0.1:80", ready, local, nodes("node-1"), zones("zone-a")), ep("10.0.0.2:80", ready, nodes("node-2"), zones("zone-a"))},
		policy: clusterIP, node: thisNode, mode: ModePreferSameNode,
		why: "every ready endpoint has a node hint, some for this node",
		verdicts: map[string]verdict{
			"10.0.0.1:80": {Cluster: "+"},
			"10.0.0.2:80": {Cluster: "node hint for node-2, not this node (node-1)"},
		},
	}, {
		name:   "Local policies",
		eps:    []endpoints.Endpoint{ep("10.0.0.1:80", ready, local), ep("10.0.0.2:80", ready), ep("10.0.0.3:80", terminating, local)},
		policy: nodePortETPLocal, node: thisNode,
		verdicts: map[string]verdict{
			"10.0.0.1:80": {Cluster: "+", Local: "+"},
			"10.0.0.2:80": {Cluster: "+", Local: ReasonNotLocal},
			"10.0.0.3:80": {Cluster: ReasonTerminatingWhileReady, Local: ReasonTerminatingWhileLocal},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := Explain(tt.eps, tt.policy, tt.node)
			if x.Result.Mode != tt.mode || x.ModeReason != tt.why {
				t.Errorf("mode %q (%q), want %q (%q)", x.Result.Mode, x.ModeReason, tt.mode, tt.why)
			}
			got := map[string]verdict{}
			for _, v := range x.Endpoints {
				var g verdict
				if g.Cluster = v.ClusterReason; v.InCluster {
					g.Cluster = "+"
				}
				if g.Local = v.LocalReason; v.InLocal {
					g.Local = "+"
				}
				got[v.Endpoint.String()] = g
			}
			if diff := cmp.Diff(tt.verdicts, got); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExplainAgreesWithCategorize: on random endpoint sets, Explain puts in
// each list exactly what Categorize does, and gives a reason for every
// endpoint a used list leaves out, none otherwise.
func TestExplainAgreesWithCategorize(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	policies := []Policy{clusterIP, internalLocal, nodePortETPLocal, nodePortITPLocal, nodePortBothLocal, etpLocalInternalOnly}
	for i := range 2000 {
		var eps []endpoints.Endpoint
		for j := range r.IntN(6) {
			e := endpoints.Endpoint{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(j + 1)}), 80), NodeName: "node-2"}
			e.Ready = r.IntN(2) == 0
			e.Serving = e.Ready || r.IntN(2) == 0
			e.Terminating = !e.Ready && r.IntN(2) == 0
			if r.IntN(2) == 0 {
				e.NodeName, e.Local = "node-1", true
			}
			if r.IntN(3) == 0 {
				e.ZoneHints = []string{[]string{"zone-a", "zone-b"}[r.IntN(2)]}
			}
			if r.IntN(4) == 0 {
				e.NodeHints = []string{[]string{"node-1", "node-2"}[r.IntN(2)]}
			}
			eps = append(eps, e)
		}
		p := policies[r.IntN(len(policies))]
		node := []Node{thisNode, zonelessNode}[r.IntN(2)]
		x := Explain(eps, p, node)
		want := Categorize(eps, p, node)
		if diff := cmp.Diff(addrs(want.Cluster), addrs(x.Result.Cluster)); diff != "" {
			t.Fatalf("case %d: Result differs from Categorize: %s", i, diff)
		}
		for _, v := range x.Endpoints {
			check := func(list []endpoints.Endpoint, in bool, reason, which string) {
				held := contains(list, v.Endpoint)
				if held != in {
					t.Fatalf("case %d: %s says in=%v for %v, the list says %v", i, which, in, v.Endpoint, held)
				}
				if (list != nil && !in) != (reason != "") {
					t.Fatalf("case %d: %s reason %q for %v (in=%v, list used=%v)", i, which, reason, v.Endpoint, in, list != nil)
				}
			}
			check(want.Cluster, v.InCluster, v.ClusterReason, "Cluster")
			check(want.Local, v.InLocal, v.LocalReason, "Local")
		}
	}
}
