package nftables_test

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemap"
)

// Render shows what Sync would program: here, the table the service is
// hashed to, the dispatch element of its cluster IP and the rules that pick
// one of its two endpoints.
func ExampleRender() {
	ready := discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)}
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	tr.OnServiceAdd(&v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: v1.ServiceSpec{
			Type:       v1.ServiceTypeClusterIP,
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10"},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol},
			Ports:      []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}},
		},
	})
	tr.OnEndpointSliceAdd(&discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080), Protocol: ptr(v1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.1.5"}, NodeName: ptr("node-b"), Conditions: ready},
			{Addresses: []string{"10.244.2.5"}, NodeName: ptr("node-c"), Conditions: ready},
		},
	})

	text := nftables.Render(tr.Snapshot(), nftables.Spec{})
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "table ") || strings.Contains(line, "10.96.0.10 . tcp") || strings.Contains(line, "dnat to") {
			fmt.Println(strings.TrimSpace(line))
		}
	}
	// Output:
	// table ip lbkit-02 {
	// 10.96.0.10 . tcp . 80 : goto svc-default/web/http/tcp-rtgfca5m
	// numgen random mod 2 == 0 meta l4proto tcp dnat to 10.244.1.5:8080
	// meta l4proto tcp dnat to 10.244.2.5:8080
}

func ptr[T any](v T) *T { return &v }
