package fake_test

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/servicemap"
)

func ptr[T any](v T) *T { return &v }

// A full sync renders every service port; a failed sync keeps the previous
// state; an incremental sync applies only the difference.
func Example() {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	tr.OnServiceAdd(&v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: v1.ServiceSpec{
			ClusterIP: "10.96.0.10",
			Ports:     []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}},
		},
	})
	first := tr.Snapshot()

	b := fake.New(fake.Options{})
	ctx := context.Background()
	if err := b.Sync(ctx, nil, first); err != nil {
		panic(err)
	}
	fmt.Print(b.Dump())

	tr.OnEndpointSliceAdd(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.1.5"}, NodeName: ptr("node-a")},
			{Addresses: []string{"10.244.2.7"}, NodeName: ptr("node-b")},
		},
	})
	second := tr.Snapshot()

	b.FailNext(errors.New("netlink: device busy"))
	err := b.Sync(ctx, first, second)
	fmt.Println("apply failed:", errors.Is(err, backends.ErrApply))
	fmt.Print(b.Dump())

	if err := b.Sync(ctx, nil, second); err != nil { // retried as a full sync
		panic(err)
	}
	fmt.Print(b.Dump())
	// Output:
	// default/web:http TCP 10.96.0.10:80 cluster=reject
	// apply failed: true
	// default/web:http TCP 10.96.0.10:80 cluster=reject
	// default/web:http TCP 10.96.0.10:80 cluster=10.244.1.5:8080,10.244.2.7:8080
}
