package iptables_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// mixedCluster returns a tracker holding n services of every kind the
// renderer distinguishes, drawn from a fixed seed: ClusterIP, NodePort and
// LoadBalancer services, both traffic policies, ClientIP affinity,
// external IPs, source ranges, several protocols and ports per service,
// and endpoints local, remote, terminating, not ready or absent.
func mixedCluster(n int) *servicemap.Tracker {
	rnd := rand.New(rand.NewPCG(1, 2))
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	for i := range n {
		ns, name := fmt.Sprintf("ns-%d", i%7), fmt.Sprintf("svc-%d", i)
		ports := []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}
		slicePorts := []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)}
		switch rnd.IntN(4) {
		case 0:
			ports = append(ports, v1.ServicePort{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP})
			slicePorts = append(slicePorts, servicemaptest.SlicePort("dns", 5353, v1.ProtocolUDP))
		case 1:
			ports = append(ports, v1.ServicePort{Name: "sctp", Port: 9000, Protocol: v1.ProtocolSCTP})
			slicePorts = append(slicePorts, servicemaptest.SlicePort("sctp", 9000, v1.ProtocolSCTP))
		}
		kind := rnd.IntN(3)
		svc := servicemaptest.Service(ns, name, fmt.Sprintf("10.96.%d.%d", i/200, i%200+1), ports, func(s *v1.Service) {
			if kind > 0 {
				s.Spec.Type = v1.ServiceTypeNodePort
				for j := range s.Spec.Ports {
					s.Spec.Ports[j].NodePort = int32(30000 + 2*i + j)
				}
				if rnd.IntN(2) == 0 {
					s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
				}
			}
			if kind == 2 {
				s.Spec.Type = v1.ServiceTypeLoadBalancer
				s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: fmt.Sprintf("198.51.100.%d", i%250+1)}}
				if s.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal {
					s.Spec.HealthCheckNodePort = int32(32000 + i)
				}
				if rnd.IntN(2) == 0 {
					s.Spec.LoadBalancerSourceRanges = []string{"203.0.113.0/24", "192.0.2.128/25"}
				}
			}
			if rnd.IntN(5) == 0 {
				s.Spec.ExternalIPs = []string{fmt.Sprintf("192.0.2.%d", i%120+1)}
			}
			if rnd.IntN(6) == 0 {
				s.Spec.InternalTrafficPolicy = servicemaptest.Ptr(v1.ServiceInternalTrafficPolicyLocal)
			}
			if rnd.IntN(4) == 0 {
				s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
				if rnd.IntN(2) == 0 {
					s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: servicemaptest.Ptr[int32](int32(60 + i))}}
				}
			}
		})
		tr.OnServiceAdd(svc)
		var eps []servicemaptest.Endpoint
		for j := range rnd.IntN(6) {
			ip := fmt.Sprintf("10.244.%d.%d", i%250, j+1)
			node := []string{"node", "other", "third"}[rnd.IntN(3)]
			switch rnd.IntN(8) {
			case 0:
				eps = append(eps, servicemaptest.Terminating(ip, node))
			case 1:
				eps = append(eps, servicemaptest.NotReady(ip, node))
			default:
				eps = append(eps, servicemaptest.Ready(ip, node))
			}
		}
		if len(eps) > 0 {
			tr.OnEndpointSliceAdd(servicemaptest.Slice(ns, name, name+"-1", slicePorts, eps))
		}
	}
	return tr
}

// TestRenderMixed compares the rendering of 150 mixed services with a
// golden file. The golden was written by the renderer that built every
// rule with fmt and string concatenation, so it shows the buffer-appending
// renderer writes the same bytes for every kind of port.
func TestRenderMixed(t *testing.T) {
	spec := iptables.Spec{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}
	checkGolden(t, "mixed.golden", iptables.Render(mixedCluster(150).Snapshot(), spec))
}
