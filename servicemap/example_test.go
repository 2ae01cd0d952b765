package servicemap_test

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/servicemap"
)

func ptr[T any](v T) *T { return &v }

// A tracker fed one Service and its EndpointSlice resolves the service's
// backends for node-a; a terminating endpoint is kept aside while a ready
// one exists.
func Example() {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	tr.OnServiceAdd(&v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: v1.ServiceSpec{
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10"},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol},
			Ports:      []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}},
		},
	})
	tr.OnEndpointSliceAdd(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.1.5"}, NodeName: ptr("node-a")},
			{Addresses: []string{"10.244.2.7"}, NodeName: ptr("node-b"),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr(false), Terminating: ptr(true)}},
		},
	})
	snap := tr.Snapshot()
	for _, p := range snap.Ports() {
		fmt.Printf("%s %s:%d/%s -> %v (version %d)\n", p.Name, p.ClusterIP, p.Port, p.Protocol, p.Topology.Cluster, snap.Version())
	}
	// Output:
	// default/web:http 10.96.0.10:80/TCP -> [10.244.1.5:8080] (version 1)
}

// Diff tells a data plane what changed between two snapshots.
func ExampleDiff() {
	tr := servicemap.NewTracker(servicemap.Options{})
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "dns"},
		Spec: v1.ServiceSpec{
			ClusterIP: "10.96.0.53",
			Ports:     []v1.ServicePort{{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP}},
		},
	}
	tr.OnServiceAdd(svc)
	before := tr.Snapshot()
	tr.OnServiceDelete(svc)
	c := servicemap.Diff(before, tr.Snapshot())
	fmt.Println("removed:", c.Removed[0].Name, "stale UDP service:", c.StaleServices[0].ClusterIP)
	// Output:
	// removed: kube-system/dns:dns stale UDP service: 10.96.0.53
}
