// Command fakeclientset drives a servicemap.Tracker from client-go informers
// over k8s.io/client-go/kubernetes/fake: the pattern to copy into your own
// tests, where a fake clientset stands in for the API server.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/lbkit/lbkit/servicemap"
)

// watch registers the tracker on informers of client and starts them. It
// returns once the tracker's event handlers have seen every object of the
// initial listing: the registrations' HasSynced, not the informers' (an
// informer's cache can be complete before its handlers have been called).
func watch(ctx context.Context, client kubernetes.Interface, tr *servicemap.Tracker) error {
	factory := informers.NewSharedInformerFactory(client, 0)
	svcInformer := factory.Core().V1().Services().Informer()
	sliceInformer := factory.Discovery().V1().EndpointSlices().Informer()
	nodeInformer := factory.Core().V1().Nodes().Informer()
	var synced []cache.InformerSynced
	for inf, h := range map[cache.SharedIndexInformer]cache.ResourceEventHandler{
		svcInformer:   tr.ServiceHandler(),
		sliceInformer: tr.EndpointSliceHandler(),
		nodeInformer:  tr.NodeHandler(),
	} {
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return err
		}
		synced = append(synced, reg.HasSynced)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("event handlers did not sync: %w", ctx.Err())
	}
	return nil
}

// waitForVersion waits until the tracker's snapshot reaches at least v.
// changes is a subscription (Tracker.Subscribe) taken before the events
// waited for were caused, so that none of them goes unnoticed.
func waitForVersion(ctx context.Context, tr *servicemap.Tracker, changes <-chan struct{}, v uint64) (*servicemap.Snapshot, error) {
	for {
		if s := tr.Snapshot(); s.Version() >= v {
			return s, nil
		}
		select {
		case <-changes:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func ptr[T any](v T) *T { return &v }

func demo(ctx context.Context, out io.Writer) error {
	client := fake.NewClientset()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	changes, unsubscribe := tr.Subscribe()
	defer unsubscribe()
	if err := watch(ctx, client, tr); err != nil {
		return err
	}
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: v1.ServiceSpec{
			Type: v1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol},
			Ports:      []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}},
		},
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080), Protocol: ptr(v1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.1.5"}, NodeName: ptr("node-a")},
			{Addresses: []string{"10.244.2.7"}, NodeName: ptr("node-b")},
		},
	}
	if _, err := client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return err
	}
	// Events arrive asynchronously; wait until both objects are in.
	var snap *servicemap.Snapshot
	for {
		s, err := waitForVersion(ctx, tr, changes, snap.Version()+1)
		if err != nil {
			return err
		}
		snap = s
		if p := snap.Lookup(servicemap.ServicePortName{Namespace: "default", Name: "web", Port: "http", Protocol: v1.ProtocolTCP}); p != nil && len(p.Endpoints) == 2 {
			fmt.Fprintf(out, "%s -> %v\n", p.Name, p.Topology.Cluster)
			break
		}
	}

	// The second endpoint turns not ready: the next snapshot drops it.
	slice.Endpoints[1].Conditions.Ready = ptr(false)
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		return err
	}
	next, err := waitForVersion(ctx, tr, changes, snap.Version()+1)
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
