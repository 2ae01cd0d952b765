package userspace_test

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/userspace"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// Render shows what the proxy serves: the address it puts on its link,
// the socket behind each frontend and where connections go.
func ExampleRender() {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	tr.OnServiceAdd(servicemaptest.Service("default", "web", "10.96.0.10",
		[]v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "web", "web-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.5", "node-b"), servicemaptest.Ready("10.244.2.5", "node-c")}))

	fmt.Print(userspace.Render(tr.Snapshot(), userspace.Spec{}))
	// Output:
	// link lbkit-us0: 10.96.0.10
	// listen tcp 10.96.0.10:80 (cluster IP of default/web:http) -> 10.244.1.5:8080,10.244.2.5:8080
	// table ip lbkit-userspace:
}
