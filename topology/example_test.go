package topology_test

import (
	"fmt"
	"net/netip"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/topology"
)

// A node in zone-a sends Cluster-policy traffic only to the endpoints the
// EndpointSlice controller hinted for its zone. With externalTrafficPolicy
// Local on a node port, external traffic goes to the endpoints on this node,
// whatever their hints.
func ExampleCategorize() {
	eps := []endpoints.Endpoint{
		{Addr: netip.MustParseAddrPort("10.244.1.5:8080"), NodeName: "node-a", Ready: true, Serving: true, Local: true, ZoneHints: []string{"zone-b"}},
		{Addr: netip.MustParseAddrPort("10.244.2.7:8080"), NodeName: "node-b", Ready: true, Serving: true, ZoneHints: []string{"zone-a"}},
		{Addr: netip.MustParseAddrPort("10.244.3.9:8080"), NodeName: "node-c", Ready: true, Serving: true, ZoneHints: []string{"zone-b"}},
	}
	policy := topology.Policy{ExternalLocal: true, ExternallyAccessible: true}
	r := topology.Categorize(eps, policy, topology.Node{Name: "node-a", Zone: "zone-a"})

	fmt.Println("mode:     ", r.Mode)
	fmt.Println("cluster:  ", r.Cluster)
	fmt.Println("local:    ", r.Local)
	fmt.Println("reachable:", r.Reachable())
	fmt.Println("endpoints somewhere:", r.HasEndpoints)
	// Output:
	// mode:      PreferSameZone
	// cluster:   [10.244.2.7:8080]
	// local:     [10.244.1.5:8080]
	// reachable: [10.244.1.5:8080 10.244.2.7:8080]
	// endpoints somewhere: true
}

// Explain says why each endpoint is used or left out: here zone hints
// narrow the Cluster list to this node's zone.
func ExampleExplain() {
	node := topology.Node{Name: "node-a", Zone: "zone-a"}
	ready := func(addr, zone string) endpoints.Endpoint {
		return endpoints.Endpoint{Addr: netip.MustParseAddrPort(addr), Ready: true, Serving: true, ZoneHints: []string{zone}}
	}
	eps := []endpoints.Endpoint{ready("10.244.1.5:8080", "zone-a"), ready("10.244.2.7:8080", "zone-b")}
	x := topology.Explain(eps, topology.Policy{}, node)
	fmt.Println(x.Result.Mode, "-", x.ModeReason)
	for _, v := range x.Endpoints {
		if v.InCluster {
			fmt.Println(v.Endpoint, "used")
		} else {
			fmt.Println(v.Endpoint, "left out:", v.ClusterReason)
		}
	}
	// Output:
	// PreferSameZone - every ready endpoint has a zone hint, some for zone zone-a
	// 10.244.1.5:8080 used
	// 10.244.2.7:8080 left out: zone hint for zone-b while this node is in zone-a
}
