// Package testobj forwards to servicemaptest, the public test kit, for the
// tests written before it was public.
//
// Deprecated: use github.com/lbkit/lbkit/servicemaptest.
package testobj

import (
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	kit "github.com/lbkit/lbkit/servicemaptest"
)

// Endpoint is servicemaptest.Endpoint.
type Endpoint = kit.Endpoint

// Ptr returns a pointer to v.
func Ptr[T any](v T) *T { return kit.Ptr(v) }

// Port is servicemaptest.Port.
func Port(name string, port int32, proto v1.Protocol) v1.ServicePort {
	return kit.Port(name, port, proto)
}

// Service is servicemaptest.Service.
func Service(ns, name, clusterIP string, ports []v1.ServicePort, mutate ...func(*v1.Service)) *v1.Service {
	return kit.Service(ns, name, clusterIP, ports, mutate...)
}

// Ready, NotReady and Terminating are servicemaptest's.
func Ready(ip, node string) Endpoint       { return kit.Ready(ip, node) }
func NotReady(ip, node string) Endpoint    { return kit.NotReady(ip, node) }
func Terminating(ip, node string) Endpoint { return kit.Terminating(ip, node) }

// SlicePort is servicemaptest.SlicePort.
func SlicePort(name string, port int32, proto v1.Protocol) discoveryv1.EndpointPort {
	return kit.SlicePort(name, port, proto)
}

// Slice is servicemaptest.Slice.
func Slice(ns, service, sliceName string, ports []discoveryv1.EndpointPort, eps []Endpoint, mutate ...func(*discoveryv1.EndpointSlice)) *discoveryv1.EndpointSlice {
	return kit.Slice(ns, service, sliceName, ports, eps, mutate...)
}

// Node is servicemaptest.Node.
func Node(name, zone string) *v1.Node { return kit.Node(name, zone) }

// Cluster is servicemaptest.Cluster.
func Cluster(n, eps int) ([]*v1.Service, []*discoveryv1.EndpointSlice) { return kit.Cluster(n, eps) }
