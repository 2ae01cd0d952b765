package healthcheck_test

import (
	"fmt"
	"io"
	"net"
	"net/http"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/backends/healthcheck"
	"github.com/lbkit/lbkit/servicemap"
)

func ptr[T any](v T) *T { return &v }

// A LoadBalancer Service with externalTrafficPolicy Local gets its
// healthCheckNodePort served; the node has one ready endpoint of it. (The
// example listens on a free loopback port instead of 32000.)
func ExampleServer() {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	tr.OnServiceAdd(&v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: v1.ServiceSpec{
			Type:                  v1.ServiceTypeLoadBalancer,
			ClusterIP:             "10.96.0.10",
			Ports:                 []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP, NodePort: 30080}},
			ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyLocal,
			HealthCheckNodePort:   32000,
		},
	})
	tr.OnEndpointSliceAdd(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.1.5"}, NodeName: ptr("node-a")},
			{Addresses: []string{"10.244.2.7"}, NodeName: ptr("node-b")},
		},
	})

	var addr string
	s := healthcheck.NewServer(healthcheck.Options{
		NodeName: "node-a",
		Listen: func(network, _ string) (net.Listener, error) {
			l, err := net.Listen(network, "127.0.0.1:0")
			if err == nil {
				addr = l.Addr().String()
			}
			return l, err
		},
	})
	defer s.Close()
	if err := s.Sync(tr.Snapshot()); err != nil {
		panic(err)
	}
	fmt.Println("ports:", s.Ports())

	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status)
	fmt.Println(string(body))
	// Output:
	// ports: [32000]
	// 200 OK
	// {"service":{"namespace":"default","name":"web"},"localEndpoints":1,"serviceProxyHealthy":true}
}
