package servicemaptest_test

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/lbkit/lbkit/servicemap"
	kit "github.com/lbkit/lbkit/servicemaptest"
)

// A test writes Pods' EndpointSlices as the EndpointSlice controller would,
// through a fake clientset, and waits for the snapshot a proxy would
// program.
func Example() {
	ctx := context.Background()
	app := map[string]string{"app": "web"}
	svc := kit.Service("shop", "web", "10.96.0.10",
		[]v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		func(s *v1.Service) { s.Spec.Selector = app })
	pods := []*v1.Pod{
		kit.Pod("shop", "web-1", "node-a", "10.244.1.5", true, app, nil),
		kit.Pod("shop", "web-2", "node-b", "10.244.2.5", false, app, nil),
	}
	client := fake.NewClientset(kit.Node("node-a", "zone-a"))
	h, err := kit.StartHarness(ctx, client, servicemap.Options{NodeName: "node-a"})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	client.CoreV1().Services("shop").Create(ctx, svc, metav1.CreateOptions{})
	for _, es := range kit.SlicesFromPods(svc, pods, kit.SliceOptions{}) {
		client.DiscoveryV1().EndpointSlices("shop").Create(ctx, es, metav1.CreateOptions{})
	}
	snap, _ := h.WaitFor(ctx, func(s *servicemap.Snapshot) bool {
		p := s.Lookup(servicemap.ServicePortName{Namespace: "shop", Name: "web", Port: "http", Protocol: v1.ProtocolTCP})
		return p != nil && len(p.Endpoints) == 2
	})
	p := snap.Service("shop", "web")[0]
	fmt.Println(p.Name, "->", p.Topology.Cluster)
	// Output:
	// shop/web:http -> [10.244.1.5:8080]
}

// FlipReady turns one endpoint not ready and back, one Snapshot per call.
func ExampleFlipReady() {
	tr := servicemap.NewTracker(servicemap.Options{})
	svcs, slices := kit.Cluster(1, 2)
	tr.OnServiceAdd(svcs[0])
	tr.OnEndpointSliceAdd(slices[0])
	next := kit.FlipReady(tr, slices[0])
	for range 3 {
		snap := next()
		fmt.Println(len(snap.Ports()[0].UsedEndpoints()), "endpoints in use")
	}
	// Output:
	// 1 endpoints in use
	// 2 endpoints in use
	// 1 endpoints in use
}
