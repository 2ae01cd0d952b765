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
