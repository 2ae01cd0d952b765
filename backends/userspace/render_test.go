package userspace_test

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/lbkit/lbkit/internal/golden"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/userspace"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

func TestRender(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	port := []discoveryv1.EndpointPort{servicemaptest.SlicePort("p", 8080, v1.ProtocolTCP)}
	tcp := []v1.ServicePort{servicemaptest.Port("p", 80, v1.ProtocolTCP)}
	add := func(svc *v1.Service, eps ...servicemaptest.Endpoint) {
		tr.OnServiceAdd(svc)
		if eps != nil {
			tr.OnEndpointSliceAdd(servicemaptest.Slice(svc.Namespace, svc.Name, svc.Name+"-1", port, eps))
		}
	}
	local, remote := servicemaptest.Ready("10.244.0.5", "node-a"), servicemaptest.Ready("10.244.1.5", "node-b")
	add(servicemaptest.Service("ns", "web", "10.96.0.10", tcp), local, remote)
	add(servicemaptest.Service("ns", "empty", "10.96.0.11", tcp))
	add(servicemaptest.Service("ns", "itp", "10.96.0.12", tcp, func(s *v1.Service) {
		s.Spec.InternalTrafficPolicy = servicemaptest.Ptr(v1.ServiceInternalTrafficPolicyLocal)
	}), remote)
	add(servicemaptest.Service("ns", "lb", "10.96.0.13", tcp, func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 30999
		s.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24"}
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: servicemaptest.Ptr[int32](600)}}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.7"}}
	}), remote)
	add(servicemaptest.Service("ns", "dns", "10.96.0.53", []v1.ServicePort{servicemaptest.Port("p", 53, v1.ProtocolUDP)},
		func(s *v1.Service) { s.Spec.ExternalIPs = []string{"192.0.2.53"} }),
		servicemaptest.Ready("10.244.0.53", "node-a"))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "dns", "dns-1", []discoveryv1.EndpointPort{servicemaptest.SlicePort("p", 53, v1.ProtocolUDP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.0.53", "node-a")}))

	got := userspace.Render(tr.Snapshot(), userspace.Spec{
		NodeIPs:      []netip.Addr{netip.MustParseAddr("172.18.0.2"), netip.MustParseAddr("127.0.0.1")},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
	})
	golden.Check(t, filepath.Join("testdata", "render.golden"), got)
}
