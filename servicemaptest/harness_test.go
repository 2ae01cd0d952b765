package servicemaptest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/lbkit/lbkit/servicemap"
	kit "github.com/lbkit/lbkit/servicemaptest"
)

// TestHarnessSeesWritesRightAfterStart writes objects the moment
// StartHarness returns, many times over: every one reaches the Tracker
// (with the fake clientset, a write between an informer's list and its
// watch could be lost; the Harness returns only once the watches run).
func TestHarnessSeesWritesRightAfterStart(t *testing.T) {
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		client := fake.NewClientset(kit.Node("node-a", "zone-a"))
		h, err := kit.StartHarness(ctx, client, servicemap.Options{NodeName: "node-a"})
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("svc%d", i)
		svc := kit.Service("ns", name, "10.96.0.10", []v1.ServicePort{kit.Port("http", 80, v1.ProtocolTCP)})
		if _, err := client.CoreV1().Services("ns").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		es := kit.Slice("ns", name, name+"-1", []discoveryv1.EndpointPort{kit.SlicePort("http", 8080, v1.ProtocolTCP)},
			[]kit.Endpoint{kit.Ready("10.244.0.1", "node-a")})
		if _, err := client.DiscoveryV1().EndpointSlices("ns").Create(ctx, es, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		snap, err := h.WaitFor(ctx, func(s *servicemap.Snapshot) bool {
			p := s.Lookup(servicemap.ServicePortName{Namespace: "ns", Name: name, Port: "http", Protocol: v1.ProtocolTCP})
			return p != nil && len(p.Topology.Cluster) == 1
		})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if zone := snap.Node().Zone; zone != "zone-a" {
			t.Errorf("run %d: zone %q, want zone-a (the Node listed at start)", i, zone)
		}
		h.Close()
		cancel()
	}
}
