package picker_test

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/picker"
	"github.com/lbkit/lbkit/servicemap"
)

func ptr[T any](v T) *T { return &v }

// A mesh sidecar resolves a connection to a cluster IP in process: the
// picker follows the Tracker's snapshots and chooses among the endpoints
// the kernel backends would use.
func Example() {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	tr.OnServiceAdd(&v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart"},
		Spec: v1.ServiceSpec{
			ClusterIP: "10.96.0.20",
			Ports:     []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}},
		},
	})
	tr.OnEndpointSliceAdd(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "cart-1", Labels: map[string]string{discoveryv1.LabelServiceName: "cart"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.1.5"}},
			{Addresses: []string{"10.244.2.5"}},
			{Addresses: []string{"10.244.3.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
		},
	})
	p := picker.New(tr.Snapshot(), picker.Options{Policy: picker.RoundRobin})

	vip := netip.MustParseAddrPort("10.96.0.20:80")
	for range 3 {
		res, err := p.PickFrontend(v1.ProtocolTCP, vip, picker.Request{Client: netip.MustParseAddr("10.244.7.7")})
		if err != nil {
			panic(err)
		}
		fmt.Println(res.Verdict, res.Addr().Addr().Is4(), res.Addr().Port())
		res.Done()
	}

	// The last endpoint goes; the next snapshot leaves nothing to pick.
	tr.OnEndpointSliceDelete(&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart-1"}})
	p.Update(tr.Snapshot())
	res, _ := p.PickFrontend(v1.ProtocolTCP, vip, picker.Request{})
	fmt.Println(res.Verdict)
	// Output:
	// forward true 8080
	// forward true 8080
	// forward true 8080
	// reject
}
