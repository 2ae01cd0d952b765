package endpoints_test

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/endpoints"
)

func ptr[T any](v T) *T { return &v }

// Two EndpointSlices of one service, parsed once each, merge into the
// endpoints of each port as node-a sees them. 10.244.2.7 is listed by both
// slices while it moves from one to the other; it appears once, and the
// ready copy wins over the terminating one. A slice of the other IP family
// is ignored with a warning.
func ExampleMerge() {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "web"}}
	}
	ports := []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080), Protocol: ptr(v1.ProtocolTCP)}}
	inputs := []*discoveryv1.EndpointSlice{
		{
			ObjectMeta: meta("web-abc"), AddressType: discoveryv1.AddressTypeIPv4, Ports: ports,
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.244.1.5"}, NodeName: ptr("node-a")},
				{Addresses: []string{"10.244.2.7"}, NodeName: ptr("node-b"),
					Conditions: discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}},
			},
		},
		{
			ObjectMeta: meta("web-def"), AddressType: discoveryv1.AddressTypeIPv4, Ports: ports,
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.244.2.7"}, NodeName: ptr("node-b")},
			},
		},
		{
			ObjectMeta: meta("web-v6"), AddressType: discoveryv1.AddressTypeIPv6, Ports: ports,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"fd00::5"}}},
		},
	}

	var parsed []*endpoints.Slice
	for _, es := range inputs {
		s, warnings := endpoints.ParseSlice(es, v1.IPv4Protocol)
		for _, w := range warnings {
			fmt.Println("warning:", w.Reason, w.Object)
		}
		if s != nil {
			parsed = append(parsed, s)
		}
	}
	for _, pe := range endpoints.Merge(parsed, "node-a") {
		fmt.Printf("port %s/%s:\n", pe.Name, pe.Protocol)
		for _, e := range pe.Endpoints {
			fmt.Printf("  %s node=%s ready=%t terminating=%t local=%t\n", e, e.NodeName, e.Ready, e.Terminating, e.Local)
		}
	}
	// Output:
	// warning: OtherIPFamily EndpointSlice default/web-v6
	// port http/TCP:
	//   10.244.1.5:8080 node=node-a ready=true terminating=false local=true
	//   10.244.2.7:8080 node=node-b ready=true terminating=false local=false
}
