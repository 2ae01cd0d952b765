package kubeproxy_test

import (
	"fmt"
	"math/rand/v2"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The node both sides resolve for, and its zone.
const (
	thisNode = "node-a"
	thisZone = "zone-a"
)

// cluster is one random input: Services and EndpointSlices an API server
// would accept, with the variety kube-proxy's corner cases live in.
type cluster struct {
	services []*v1.Service
	slices   []*discoveryv1.EndpointSlice
	// zone is this node's zone label ("" for none).
	zone string
}

// gen draws clusters. Addresses are unique per Service where kube-proxy and
// lbkit deliberately differ on a conflict (two Services claiming one
// frontend: lbkit keeps the first and warns), and drawn from small pools
// where sharing is legal (endpoint addresses, repeated across slices).
type gen struct {
	r        *rand.Rand
	nodePort int
	// addressTypes keeps each slice name's address type through a
	// history: the API server refuses to change it.
	addressTypes map[string]discoveryv1.AddressType
	// owners keeps each slice name's Service through a history; pools
	// gives each slice name addresses of its own.
	owners map[string]string
	pools  map[string]int
}

func (g *gen) n(n int) int           { return g.r.IntN(n) }
func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func pick[T any](g *gen, list ...T) T { return list[g.r.IntN(len(list))] }

func (g *gen) cluster() cluster {
	c := cluster{zone: thisZone}
	if g.chance(0.1) {
		c.zone = ""
	}
	g.nodePort = 30000
	for i := range 1 + g.n(4) {
		svc := g.service(i)
		c.services = append(c.services, svc)
		for j := range g.n(4) {
			c.slices = append(c.slices, g.slice(svc, j))
		}
	}
	// Now and then a slice whose Service does not exist.
	if g.chance(0.1) {
		c.slices = append(c.slices, g.slice(g.service(9), 0))
	}
	return c
}

// history is one to three clusters in a row: the same names come back with
// other contents, or go.
func (g *gen) history() []cluster {
	h := make([]cluster, 1+g.n(3))
	for i := range h {
		h[i] = g.cluster()
	}
	return h
}

func (g *gen) service(i int) *v1.Service {
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("svc%d", i)},
		Spec: v1.ServiceSpec{
			Type:            pick(g, v1.ServiceTypeClusterIP, v1.ServiceTypeNodePort, v1.ServiceTypeLoadBalancer),
			SessionAffinity: v1.ServiceAffinityNone,
		},
	}
	v4, v6 := fmt.Sprintf("10.96.0.%d", 10+i), fmt.Sprintf("fd00:96::%x", 0x10+i)
	switch g.n(6) {
	case 0:
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = v6, []string{v6}
		svc.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol}
	case 1:
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = v4, []string{v4, v6}
		svc.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
	case 2:
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = v6, []string{v6, v4}
		svc.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol, v1.IPv4Protocol}
	case 3:
		if g.chance(0.2) {
			svc.Spec.Type, svc.Spec.ExternalName = v1.ServiceTypeExternalName, "example.com"
			svc.Spec.Ports = []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}
			return svc
		}
		if g.chance(0.5) { // headless
			svc.Spec.Type = v1.ServiceTypeClusterIP
			svc.Spec.ClusterIP, svc.Spec.ClusterIPs = v1.ClusterIPNone, []string{v1.ClusterIPNone}
			break
		}
		fallthrough
	default:
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = v4, []string{v4}
		svc.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol}
	}
	names := []string{""}
	if n := g.n(3); n > 0 {
		names = []string{"http", "dns", "metrics", "grpc"}[:1+n]
	}
	numbers := []int32{80, 53, 443, 8080}
	g.r.Shuffle(len(numbers), func(a, b int) { numbers[a], numbers[b] = numbers[b], numbers[a] })
	for k, name := range names {
		// Port and protocol are unique in a Service (the API server
		// refuses a repeat).
		p := v1.ServicePort{Name: name, Port: numbers[k],
			Protocol: pick(g, v1.ProtocolTCP, v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP)}
		noNodePorts := svc.Spec.Type == v1.ServiceTypeLoadBalancer && g.chance(0.1) // allocateLoadBalancerNodePorts false
		if svc.Spec.Type != v1.ServiceTypeClusterIP && !noNodePorts {
			g.nodePort++
			p.NodePort = int32(g.nodePort)
		}
		svc.Spec.Ports = append(svc.Spec.Ports, p)
	}
	if g.chance(0.3) {
		svc.Spec.ExternalIPs = append(svc.Spec.ExternalIPs, fmt.Sprintf("192.0.2.%d", 10+i))
		if g.chance(0.5) {
			svc.Spec.ExternalIPs = append(svc.Spec.ExternalIPs, fmt.Sprintf("2001:db8::%x", 0x10+i))
		}
	}
	if svc.Spec.Type == v1.ServiceTypeLoadBalancer {
		for j := range g.n(3) {
			ing := v1.LoadBalancerIngress{IP: pick(g, fmt.Sprintf("198.51.100.%d", 10+4*i+j), fmt.Sprintf("2001:db8:1::%x", 0x10+4*i+j))}
			switch g.n(4) {
			case 0:
				ing.IPMode = ptr.To(v1.LoadBalancerIPModeProxy)
			case 1:
				ing.IPMode = ptr.To(v1.LoadBalancerIPModeVIP)
			case 2:
				ing = v1.LoadBalancerIngress{Hostname: "lb.example.com"}
			}
			svc.Status.LoadBalancer.Ingress = append(svc.Status.LoadBalancer.Ingress, ing)
		}
		for range g.n(3) {
			svc.Spec.LoadBalancerSourceRanges = append(svc.Spec.LoadBalancerSourceRanges,
				pick(g, "203.0.113.0/24", " 192.0.2.0/25 ", "0.0.0.0/0", "2001:db8:2::/48", "10.0.0.0/8"))
		}
	}
	if svc.Spec.Type != v1.ServiceTypeClusterIP || len(svc.Spec.ExternalIPs) > 0 {
		svc.Spec.ExternalTrafficPolicy = pick(g, v1.ServiceExternalTrafficPolicyCluster, v1.ServiceExternalTrafficPolicyLocal)
		if svc.Spec.Type == v1.ServiceTypeLoadBalancer && svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal {
			svc.Spec.HealthCheckNodePort = int32(32000 + i)
		}
	}
	if g.chance(0.5) {
		svc.Spec.InternalTrafficPolicy = ptr.To(pick(g, v1.ServiceInternalTrafficPolicyCluster, v1.ServiceInternalTrafficPolicyLocal))
	}
	if g.chance(0.3) {
		svc.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		svc.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{
			TimeoutSeconds: ptr.To(pick[int32](g, 10800, 1, 60, 86400))}}
	}
	switch g.n(5) {
	case 0:
		svc.Spec.TrafficDistribution = ptr.To(pick(g, v1.ServiceTrafficDistributionPreferClose,
			v1.ServiceTrafficDistributionPreferSameZone, v1.ServiceTrafficDistributionPreferSameNode))
	case 1:
		svc.Annotations = map[string]string{pick(g, v1.AnnotationTopologyMode, v1.DeprecatedAnnotationTopologyAwareHints): pick(g, "Auto", "auto", "Disabled", "")}
	}
	return svc
}

func (g *gen) slice(svc *v1.Service, j int) *discoveryv1.EndpointSlice {
	name := fmt.Sprintf("%s-%d", svc.Name, j)
	if g.addressTypes == nil {
		g.addressTypes = map[string]discoveryv1.AddressType{}
	}
	at, ok := g.addressTypes[name]
	if !ok {
		at = pick(g, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6)
		g.addressTypes[name] = at
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
		AddressType: at,
	}
	for _, sp := range svc.Spec.Ports {
		if g.chance(0.15) {
			continue
		}
		proto := sp.Protocol
		if g.chance(0.1) {
			proto = v1.ProtocolUDP
		}
		ep := discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Port: ptr.To(pick[int32](g, 8080, 9090, 53)), Protocol: ptr.To(proto)}
		switch g.n(20) {
		case 0:
			ep.Port = nil // any port: kube-proxy cannot use it
		case 1:
			ep.Name = nil
		}
		es.Ports = append(es.Ports, ep)
	}
	if g.chance(0.1) {
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr.To("other"), Port: ptr.To[int32](7000), Protocol: ptr.To(v1.ProtocolTCP)})
	}
	// Addresses repeat inside a slice (kube-proxy's answer is fixed: a later
	// copy wins unless it is terminating) but not across the slices of one
	// Service: there kube-proxy's answer follows map iteration order.
	if g.pools == nil {
		g.pools = map[string]int{}
	}
	pool, ok := g.pools[name]
	if !ok {
		pool = len(g.pools)
		g.pools[name] = pool
	}
	for range g.n(5) {
		es.Endpoints = append(es.Endpoints, g.endpoint(es.AddressType, pool))
	}
	// Now and then a slice belongs to another Service than its name says.
	// It keeps that Service through a history: kube-proxy cannot follow a
	// slice whose label changes (EndpointSliceUpdate sees only the new
	// object, so the old Service keeps the slice's endpoints), where lbkit
	// moves it (README, Semantics notes).
	if g.owners == nil {
		g.owners = map[string]string{}
	}
	owner, ok := g.owners[name]
	if !ok {
		owner = svc.Name
		if g.chance(0.05) {
			owner = fmt.Sprintf("svc%d", g.n(4))
		}
		g.owners[name] = owner
	}
	es.Labels[discoveryv1.LabelServiceName] = owner
	return es
}

func (g *gen) endpoint(at discoveryv1.AddressType, pool int) discoveryv1.Endpoint {
	addr := fmt.Sprintf("10.244.%d.%d", pool, 1+g.n(6))
	if at == discoveryv1.AddressTypeIPv6 {
		addr = fmt.Sprintf("fd00:244:%x::%x", pool, 1+g.n(6))
	}
	ep := discoveryv1.Endpoint{Addresses: []string{addr}}
	if g.chance(0.05) { // only the first address counts
		ep.Addresses = append(ep.Addresses, addr[:len(addr)-1]+"9")
	}
	cond := func() *bool {
		switch g.n(4) {
		case 0:
			return nil
		case 1:
			return ptr.To(false)
		}
		return ptr.To(true)
	}
	ep.Conditions = discoveryv1.EndpointConditions{Ready: cond(), Serving: cond(), Terminating: cond()}
	if g.chance(0.8) {
		ep.NodeName = ptr.To(pick(g, thisNode, thisNode, "node-b", "node-c"))
	}
	if g.chance(0.7) {
		ep.Zone = ptr.To(pick(g, thisZone, "zone-b"))
	}
	if g.chance(0.5) {
		ep.Hints = &discoveryv1.EndpointHints{}
		for range g.n(3) {
			ep.Hints.ForZones = append(ep.Hints.ForZones, discoveryv1.ForZone{Name: pick(g, thisZone, "zone-b")})
		}
		for range g.n(3) {
			ep.Hints.ForNodes = append(ep.Hints.ForNodes, discoveryv1.ForNode{Name: pick(g, thisNode, "node-b")})
		}
	}
	return ep
}
