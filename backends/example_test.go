package backends_test

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/servicemap"
)

func ptr[T any](v T) *T { return &v }

// A Runner brings a backend to the Tracker's snapshots. In a program the
// Tracker is fed by informers (reg, _ := inf.AddEventHandler(tr.ServiceHandler())
// and so on), the registrations' reg.HasSynced go into RunnerOptions.HasSynced,
// and the Runner doubles as the /healthz handler: http.Handle("/healthz", r).
// Here the Tracker is fed before Run, so there is nothing to wait for.
func ExampleRunner() {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	tr.OnServiceAdd(&v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: v1.ServiceSpec{
			ClusterIP: "10.96.0.10",
			Ports:     []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}},
		},
	})
	tr.OnEndpointSliceAdd(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.5"}, NodeName: ptr("node-a")}},
	})

	b := fake.New(fake.Options{})
	synced := make(chan backends.SyncResult, 1)
	r := backends.NewRunner(tr, b, backends.RunnerOptions{
		NoWaitForSync: true,
		OnSync: func(res backends.SyncResult) {
			select {
			case synced <- res:
			default:
			}
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()

	res := <-synced
	fmt.Printf("full=%v version=%d ports=%d health=%s\n", res.Full, res.To, res.Changes, r.Health().State)
	fmt.Print(b.Dump())
	cancel()
	if err := <-done; err != nil {
		panic(err)
	}
	fmt.Println("after Run:", r.Health().State)
	// Output:
	// full=true version=1 ports=1 health=healthy
	// default/web:http TCP 10.96.0.10:80 cluster=10.244.1.5:8080
	// after Run: stopped
}

// Classify gives the short class /healthz shows for an error, whether a
// backend wrapped it in a sentinel or returned the system's error.
func ExampleClassify() {
	for _, err := range []error{
		nil,
		fmt.Errorf("%w: nftables: %w", backends.ErrApply, backends.WithCause(syscall.EPERM)),
		fmt.Errorf("%w: nftables: invalid argument", backends.ErrApply),
		fmt.Errorf("iptables: %w", backends.ErrNotSupported),
		context.DeadlineExceeded,
		&backends.PanicError{Value: "index out of range"},
		errors.New("something else"),
	} {
		fmt.Printf("%q\n", backends.Classify(err))
	}
	// Output:
	// ""
	// "permission"
	// "apply"
	// "not-supported"
	// "timeout"
	// "panic"
	// "other"
}
