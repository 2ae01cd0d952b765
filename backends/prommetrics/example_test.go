package prommetrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/backends/prommetrics"
	"github.com/lbkit/lbkit/servicemap"
)

func ptr[T any](v T) *T { return &v }

// A Collector registers lbkit's series on a registry of the caller's, and
// its hooks go to the Runner; /metrics then serves them.
func Example() {
	reg := prometheus.NewRegistry()
	c, err := prommetrics.New(reg, prommetrics.Options{})
	if err != nil {
		panic(err)
	}
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	tr.OnServiceAdd(&v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: v1.ServiceSpec{
			ClusterIP: "10.96.0.10", Ports: []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}},
			InternalTrafficPolicy: ptr(v1.ServiceInternalTrafficPolicyLocal),
		},
	})
	tr.OnEndpointSliceAdd(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr[int32](8080)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.2.5"}, NodeName: ptr("node-b")}},
	})
	b := fake.New(fake.Options{})
	synced := make(chan struct{}, 1)
	r := backends.NewRunner(tr, b, backends.RunnerOptions{
		NoWaitForSync: true,
		Metrics:       c.Hooks(b.Name()),
		OnSync:        func(backends.SyncResult) { synced <- struct{}{} },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	<-synced
	cancel()
	<-done

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "lbkit_sync_full_proxy_rules_duration_seconds_count") ||
			strings.HasPrefix(line, "lbkit_sync_proxy_rules_no_local_endpoints_total") ||
			strings.HasPrefix(line, "lbkit_sync_proxy_rules_endpoint_changes_total") ||
			strings.HasPrefix(line, "lbkit_sync_proxy_rules_service_changes_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// lbkit_sync_full_proxy_rules_duration_seconds_count{backend="fake"} 1
	// lbkit_sync_proxy_rules_endpoint_changes_total 1
	// lbkit_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv4",traffic_policy="external"} 0
	// lbkit_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv4",traffic_policy="internal"} 1
	// lbkit_sync_proxy_rules_service_changes_total 1
}
