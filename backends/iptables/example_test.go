package iptables_test

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// RenderTo streams the restore input into a writer, here a pipe whose
// reader keeps the rules that mention the service, as iptables-restore
// would read them from its standard input.
func ExampleRenderTo() {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	tr.OnServiceAdd(servicemaptest.Service("default", "web", "10.96.0.10", []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "web", "web-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.10", "node")}))

	r, w := io.Pipe()
	go func() { w.CloseWithError(iptables.RenderTo(w, tr.Snapshot(), iptables.Spec{})) }()
	lines := bufio.NewScanner(r)
	for lines.Scan() {
		if strings.Contains(lines.Text(), "default/web:http") {
			fmt.Println(lines.Text())
		}
	}
	// Output:
	// -A LBKIT-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 -j LBKIT-SVC-OSC5D42RU6KJHZT7
	// -A LBKIT-SEP-ZJDXO4MHE35DFH3Z -m comment --comment default/web:http -s 10.244.1.10/32 -j LBKIT-MARK-MASQ
	// -A LBKIT-SEP-ZJDXO4MHE35DFH3Z -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.10:8080
	// -A LBKIT-SVC-OSC5D42RU6KJHZT7 -m comment --comment "default/web:http -> 10.244.1.10:8080" -j LBKIT-SEP-ZJDXO4MHE35DFH3Z
}
