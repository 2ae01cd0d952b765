package backends_test

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
)

// Plan makes the traffic decision for a service port once; every data
// plane builds from it, and Decide tells what one connection meets. Here a
// LoadBalancer service with externalTrafficPolicy Local has one endpoint
// on this node and one elsewhere.
func ExamplePlan() {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	tr.OnServiceAdd(&v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: v1.ServiceSpec{
			Type:                  v1.ServiceTypeLoadBalancer,
			ClusterIP:             "10.96.0.10",
			Ports:                 []v1.ServicePort{{Name: "http", Port: 80, NodePort: 30080, Protocol: v1.ProtocolTCP}},
			ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyLocal,
			HealthCheckNodePort:   30999,
		},
		Status: v1.ServiceStatus{LoadBalancer: v1.LoadBalancerStatus{Ingress: []v1.LoadBalancerIngress{{IP: "203.0.113.7"}}}},
	})
	tr.OnEndpointSliceAdd(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.5"}, NodeName: ptr("node-a")},
			{Addresses: []string{"10.244.1.5"}, NodeName: ptr("node-b")},
		},
	})
	plan := backends.Plan(tr.Snapshot().Ports()[0])
	fmt.Println("cluster IP:", plan.Internal.Verdict, plan.Internal.Endpoints)
	fmt.Println("external:", plan.External.Verdict, plan.External.Endpoints, "short-circuit:", plan.ShortCircuit)

	for _, c := range []backends.Connection{
		{Frontend: backends.FrontendLoadBalancerIP, From: backends.FromOutside, PodsKnown: true},
		{Frontend: backends.FrontendLoadBalancerIP, From: backends.FromPod, PodsKnown: true},
		{Frontend: backends.FrontendNodePort, From: backends.FromNode, PodsKnown: true},
	} {
		d := plan.Decide(c)
		fmt.Printf("%s to %s: %s %v masquerade=%v\n", c.From, c.Frontend, d.Verdict, d.Endpoints, d.Masquerade)
	}
	// Output:
	// cluster IP: forward [10.244.0.5:8080 10.244.1.5:8080]
	// external: forward [10.244.0.5:8080] short-circuit: true
	// outside to load-balancer IP: forward [10.244.0.5:8080] masquerade=false
	// pod to load-balancer IP: forward [10.244.0.5:8080 10.244.1.5:8080] masquerade=false
	// node to node port: forward [10.244.0.5:8080 10.244.1.5:8080] masquerade=true
}
