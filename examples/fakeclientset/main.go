// Command fakeclientset drives a servicemap.Tracker from client-go informers
// over k8s.io/client-go/kubernetes/fake, through servicemaptest's Harness:
// the pattern to copy into your own tests, where a fake clientset stands in
// for the API server.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/lbkit/lbkit/servicemap"
	kit "github.com/lbkit/lbkit/servicemaptest"
)

var webHTTP = servicemap.ServicePortName{Namespace: "default", Name: "web", Port: "http", Protocol: v1.ProtocolTCP}

func demo(ctx context.Context, out io.Writer) error {
	client := fake.NewClientset()
	// StartHarness returns once the informers have listed and their watches
	// run, so no write below can fall between a list and a watch (the fake
	// clientset would drop it).
	h, err := kit.StartHarness(ctx, client, servicemap.Options{NodeName: "node-a"})
	if err != nil {
		return err
	}
	defer h.Close()

	app := map[string]string{"app": "web"}
	svc := kit.Service("default", "web", "10.96.0.10",
		[]v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		func(s *v1.Service) { s.Spec.Selector = app })
	pods := []*v1.Pod{
		kit.Pod("default", "web-1", "node-a", "10.244.1.5", true, app, nil),
		kit.Pod("default", "web-2", "node-b", "10.244.2.7", true, app, nil),
	}
	if _, err := client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return err
	}
	// The slices the EndpointSlice controller would write for these pods.
	slices := kit.SlicesFromPods(svc, pods, kit.SliceOptions{})
	for _, es := range slices {
		if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	snap, err := h.WaitFor(ctx, func(s *servicemap.Snapshot) bool {
		p := s.Lookup(webHTTP)
		return p != nil && len(p.Endpoints) == 2
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s -> %v\n", webHTTP, snap.Lookup(webHTTP).Topology.Cluster)

	// The second pod turns not ready: its slice says so, and the next
	// snapshot drops it.
	pods[1].Status.Conditions[0].Status = v1.ConditionFalse
	for _, es := range kit.SlicesFromPods(svc, pods, kit.SliceOptions{}) {
		if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	next, err := h.WaitFor(ctx, func(s *servicemap.Snapshot) bool { return s.Version() > snap.Version() })
	if err != nil {
		return err
	}
	c := servicemap.Diff(snap, next)
	for _, u := range c.Updated {
		fmt.Fprintf(out, "%s -> %v\n", u.New.Name, u.New.Topology.Cluster)
	}
	return nil
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := demo(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fakeclientset:", err)
		os.Exit(1)
	}
}
