package servicemaptest

import (
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Ptr returns a pointer to v.
func Ptr[T any](v T) *T { return &v }

// Port returns a ServicePort.
func Port(name string, port int32, proto v1.Protocol) v1.ServicePort {
	return v1.ServicePort{Name: name, Port: port, Protocol: proto}
}

// Service returns a ClusterIP Service with one cluster IP and the given
// ports, then applies the mutators.
func Service(ns, name, clusterIP string, ports []v1.ServicePort, mutate ...func(*v1.Service)) *v1.Service {
	family := v1.IPv4Protocol
	if a, err := netip.ParseAddr(clusterIP); err == nil && a.Is6() {
		family = v1.IPv6Protocol
	}
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.ServiceSpec{
			Type:                  v1.ServiceTypeClusterIP,
			ClusterIP:             clusterIP,
			ClusterIPs:            []string{clusterIP},
			IPFamilies:            []v1.IPFamily{family},
			Ports:                 ports,
			SessionAffinity:       v1.ServiceAffinityNone,
			InternalTrafficPolicy: Ptr(v1.ServiceInternalTrafficPolicyCluster),
		},
	}
	for _, m := range mutate {
		m(svc)
	}
	return svc
}

// Endpoint describes one endpoint of a slice.
type Endpoint struct {
	IP          string
	Node        string
	Zone        string
	Ready       *bool // nil = field absent
	Serving     *bool
	Terminating *bool
	ZoneHints   []string
	NodeHints   []string
}

// Ready, NotReady and Terminating are common endpoint condition sets.
func Ready(ip, node string) Endpoint {
	return Endpoint{IP: ip, Node: node, Ready: Ptr(true), Serving: Ptr(true), Terminating: Ptr(false)}
}

// NotReady is an endpoint that is neither ready nor serving.
func NotReady(ip, node string) Endpoint {
	return Endpoint{IP: ip, Node: node, Ready: Ptr(false), Serving: Ptr(false), Terminating: Ptr(false)}
}

// Terminating is an endpoint that is serving while it terminates.
func Terminating(ip, node string) Endpoint {
	return Endpoint{IP: ip, Node: node, Ready: Ptr(false), Serving: Ptr(true), Terminating: Ptr(true)}
}

// SlicePort returns an EndpointPort.
func SlicePort(name string, port int32, proto v1.Protocol) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: Ptr(name), Port: Ptr(port), Protocol: Ptr(proto)}
}

// Slice returns an EndpointSlice of the service, named sliceName.
func Slice(ns, service, sliceName string, ports []discoveryv1.EndpointPort, eps []Endpoint, mutate ...func(*discoveryv1.EndpointSlice)) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: sliceName,
			Labels: map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
	}
	for _, e := range eps {
		if a, err := netip.ParseAddr(e.IP); err == nil && a.Is6() {
			es.AddressType = discoveryv1.AddressTypeIPv6
		}
		ep := discoveryv1.Endpoint{
			Addresses:  []string{e.IP},
			Conditions: discoveryv1.EndpointConditions{Ready: e.Ready, Serving: e.Serving, Terminating: e.Terminating},
		}
		if e.Node != "" {
			ep.NodeName = Ptr(e.Node)
		}
		if e.Zone != "" {
			ep.Zone = Ptr(e.Zone)
		}
		if len(e.ZoneHints) > 0 || len(e.NodeHints) > 0 {
			ep.Hints = &discoveryv1.EndpointHints{}
			for _, z := range e.ZoneHints {
				ep.Hints.ForZones = append(ep.Hints.ForZones, discoveryv1.ForZone{Name: z})
			}
			for _, n := range e.NodeHints {
				ep.Hints.ForNodes = append(ep.Hints.ForNodes, discoveryv1.ForNode{Name: n})
			}
		}
		es.Endpoints = append(es.Endpoints, ep)
	}
	for _, m := range mutate {
		m(es)
	}
	return es
}

// Node returns a Node with the zone label set (when zone is not empty).
func Node(name, zone string) *v1.Node {
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}}
	if zone != "" {
		n.Labels[v1.LabelTopologyZone] = zone
	}
	return n
}

// Cluster returns n ClusterIP services (port "http" 80/TCP, spread over 50
// namespaces) and one EndpointSlice each with eps ready endpoints on port
// 8080, spread over 100 nodes and 3 zones: the shape every scale benchmark
// uses. Cluster IPs start at 10.96.0.0, endpoint addresses at 10.128.0.0.
func Cluster(n, eps int) ([]*v1.Service, []*discoveryv1.EndpointSlice) {
	svcs := make([]*v1.Service, n)
	slices := make([]*discoveryv1.EndpointSlice, n)
	for i := range n {
		ns := fmt.Sprintf("ns%d", i%50)
		name := fmt.Sprintf("svc%d", i)
		svcs[i] = Service(ns, name, fmt.Sprintf("10.%d.%d.%d", 96+i>>16, i>>8&255, i&255),
			[]v1.ServicePort{Port("http", 80, v1.ProtocolTCP)})
		list := make([]Endpoint, eps)
		for j := range eps {
			k := i*eps + j
			list[j] = Ready(fmt.Sprintf("10.%d.%d.%d", 128+k>>16, k>>8&255, k&255), fmt.Sprintf("node%d", k%100))
			list[j].Zone = fmt.Sprintf("zone%d", k%3)
		}
		slices[i] = Slice(ns, name, name+"-abcde", []discoveryv1.EndpointPort{SlicePort("http", 8080, v1.ProtocolTCP)}, list)
	}
	return svcs, slices
}
