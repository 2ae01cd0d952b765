package iptables_test

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// Render shows the iptables-restore input Sync would apply: here, the
// rules that pick one of a service's two endpoints with the statistic
// module, and the DNAT of each.
func ExampleRender() {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	tr.OnServiceAdd(servicemaptest.Service("default", "web", "10.96.0.10",
		[]v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "web", "web-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.5", "node-b"), servicemaptest.Ready("10.244.2.5", "node-c")}))

	for _, line := range strings.Split(iptables.Render(tr.Snapshot(), iptables.Spec{}), "\n") {
		if strings.Contains(line, "-> ") || strings.Contains(line, "DNAT") {
			fmt.Println(line)
		}
	}
	// Output:
	// -A LBKIT-SEP-PV2DHELODIM4BRTK -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080
	// -A LBKIT-SEP-TW574JV3ZMDZLA3E -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.2.5:8080
	// -A LBKIT-SVC-OSC5D42RU6KJHZT7 -m comment --comment "default/web:http -> 10.244.1.5:8080" -m statistic --mode random --probability 0.5000000000 -j LBKIT-SEP-PV2DHELODIM4BRTK
	// -A LBKIT-SVC-OSC5D42RU6KJHZT7 -m comment --comment "default/web:http -> 10.244.2.5:8080" -j LBKIT-SEP-TW574JV3ZMDZLA3E
}
