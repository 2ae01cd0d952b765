package ipvs_test

import (
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/servicemaptest"
)

// thisNode is the node every test resolves for; nodeIP is its address.
const (
	thisNode = "node-a"
	nodeIP   = "192.168.0.10"
)

// key is a virtual server key for tests: "10.96.0.10:80/TCP".
func key(s string) ipvs.Key {
	i := strings.LastIndex(s, "/")
	ap := netip.MustParseAddrPort(s[:i])
	return ipvs.Key{Addr: ap.Addr(), Port: ap.Port(), Protocol: v1.Protocol(s[i+1:])}
}

// Objects.

var (
	tcp80   = []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}
	tcp8080 = []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)}
	udp53   = []v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)}
	udp5353 = []discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 5353, v1.ProtocolUDP)}
)

func eps(e ...servicemaptest.Endpoint) []servicemaptest.Endpoint { return e }

func nodePort(np int32) func(*v1.Service) {
	return func(s *v1.Service) {
		if s.Spec.Type == v1.ServiceTypeClusterIP || s.Spec.Type == "" {
			s.Spec.Type = v1.ServiceTypeNodePort
		}
		s.Spec.Ports = slices.Clone(s.Spec.Ports) // servicemaptest shares the caller's slice
		s.Spec.Ports[0].NodePort = np
	}
}
