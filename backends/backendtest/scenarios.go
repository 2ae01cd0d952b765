package backendtest

import (
	"fmt"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/netlab"
	"github.com/lbkit/lbkit/servicemaptest"
)

// scenarios are Run's subtests, in order. Each builds its own objects and
// asserts on real traffic; none passes without the backend doing its part
// (a backend that programs nothing fails every one).
//
// A scenario whose behaviour depends on a backend option lists it; Run
// then runs it again in the variant that sets that option.
var scenarios = []scenario{
	{"ClusterIPSpread", clusterIPSpread, optClusterCIDRs | optMasqueradeAll},
	{"PodToClusterIP", podToClusterIP, optClusterCIDRs | optMasqueradeAll},
	{"NotReadyEndpoint", notReadyEndpoint, 0},
	{"TerminatingFallback", terminatingFallback, 0},
	{"NoEndpointsRejects", noEndpointsRejects, 0},
	{"SessionAffinity", sessionAffinity, 0},
	{"TCPAndUDPSamePort", tcpAndUDPSamePort, 0},
	{"NodePort", nodePort, optNodePortAddresses | optClusterCIDRs},
	{"NodeAddresses", nodeAddresses, optNodePortAddresses | optOtherFamilyNPA},
	{"ExternalTrafficPolicyLocal", externalTrafficPolicyLocal, optNodePortAddresses | optClusterCIDRs},
	{"LoadBalancerSourceRanges", loadBalancerSourceRanges, optNodePortAddresses},
	{"StaleUDPFlow", staleUDPFlow, optNodePortAddresses | optOtherFamilyNPA},
	// Field failures (scenarios_field.go).
	{"Kubernetes139628UDPScaleToZero", kubernetes139628UDPScaleToZero, 0},
	{"Kubernetes96174UDPNodePortExternalIP", kubernetes96174UDPNodePortExternalIP, optNodePortAddresses},
	{"Kubernetes131765ExternalIPLocalFromPod", kubernetes131765ExternalIPLocalFromPod, 0},
	{"Cleanup", cleanup, optNodePortAddresses | optClusterCIDRs},
	{"Restart", restart, 0},
	{"AddressHijack", addressHijack, 0},
	{"MalformedNeighbour", malformedNeighbour, 0},
}

// The scenarios' objects: namespace, the node the Tracker resolves for,
// another node for remote endpoints, and the port every backend serves.
const (
	namespace  = "conformance"
	localNode  = "node"
	remoteNode = "other"
	servePort  = 8080
)

// vip is the service address number host of the Network's ServiceCIDR
// (10.96.0.<host>, or fd00:96::<host> in hex), with port.
func (e *env) vip(host int, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netlab.HostIn(e.n.ServiceCIDR(), host), port)
}

// externalIP is address number host of the Network's ExternalCIDR, for
// external and load-balancer IPs: the client's default route leads to the
// node, and the node routes it as a real node's default route would.
func (e *env) externalIP(host int) netip.Addr { return netlab.HostIn(e.n.ExternalCIDR(), host) }

func service(name string, clusterIP netip.AddrPort, ports []v1.ServicePort, mutate ...func(*v1.Service)) *v1.Service {
	return servicemaptest.Service(namespace, name, clusterIP.Addr().String(), ports, mutate...)
}

func tcpPort(name string, port uint16) v1.ServicePort {
	return servicemaptest.Port(name, int32(port), v1.ProtocolTCP)
}

func udpPort(name string, port uint16) v1.ServicePort {
	return servicemaptest.Port(name, int32(port), v1.ProtocolUDP)
}

// withNodePort gives the service type NodePort (unless it is a
// LoadBalancer) and port i the node port np.
func withNodePort(i int, np int32) func(*v1.Service) {
	return func(s *v1.Service) {
		if s.Spec.Type != v1.ServiceTypeLoadBalancer {
			s.Spec.Type = v1.ServiceTypeNodePort
		}
		s.Spec.Ports[i].NodePort = np
	}
}

// slice is the EndpointSlice "<service>-1" whose ports are the service's
// port names, all at servePort with the service port's protocol.
func (e *env) slice(svc *v1.Service, eps ...servicemaptest.Endpoint) *discoveryv1.EndpointSlice {
	var ports []discoveryv1.EndpointPort
	for _, p := range svc.Spec.Ports {
		ports = append(ports, servicemaptest.SlicePort(p.Name, servePort, p.Protocol))
	}
	return servicemaptest.Slice(namespace, svc.Name, svc.Name+"-1", ports, eps, e.addressType)
}

// addressType gives a slice the Network's address family.
func (e *env) addressType(es *discoveryv1.EndpointSlice) {
	es.AddressType = discoveryv1.AddressTypeIPv4
	if e.variant.IPv6 {
		es.AddressType = discoveryv1.AddressTypeIPv6
	}
}

// Endpoints on backend i: ready, not ready, or terminating (serving), on
// this node or on another one.
func (e *env) ready(i int) servicemaptest.Endpoint { return servicemaptest.Ready(e.ip(i), localNode) }
func (e *env) remote(i int) servicemaptest.Endpoint {
	return servicemaptest.Ready(e.ip(i), remoteNode)
}
func (e *env) notReady(i int) servicemaptest.Endpoint {
	return servicemaptest.NotReady(e.ip(i), localNode)
}
func (e *env) terminating(i int) servicemaptest.Endpoint {
	return servicemaptest.Terminating(e.ip(i), localNode)
}

func (e *env) ip(i int) string     { return e.n.Pod(i).IP.String() }
func (e *env) name(i int) string   { return e.n.Pod(i).Name }
func (e *env) client() netip.Addr  { return e.n.ClientIP() }
func (e *env) client2() netip.Addr { return e.n.ClientIP2() }

// each wants every listed backend at least least times.
func (e *env) each(least int, backends ...int) map[string]int {
	m := map[string]int{}
	for _, i := range backends {
		m[e.name(i)] = least
	}
	return m
}

// ClusterIPSpread: a ClusterIP spreads connections over all ready
// endpoints; of 300 connections each of 3 endpoints gets at least half of
// an even share. A client outside the cluster CIDRs is masqueraded; with
// no cluster CIDRs nobody is (kube-proxy without a local detector).
func clusterIPSpread(e *env) {
	addr := e.vip(10, 80)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", addr.Port())})
	e.apply(svc, e.slice(svc, e.ready(0), e.ready(1), e.ready(2)))
	e.sync()
	got := e.tally(e.client(), addr, 300)
	expectTally(e.t, "300 connections to a cluster IP with 3 ready endpoints", got, e.each(50, 0, 1, 2))
	if len(e.n.ClusterCIDRs()) > 0 || e.n.MasqueradeAll() {
		e.expectSource(addr, true, "a client outside the cluster CIDRs to a cluster IP")
	} else {
		e.expectSource(addr, false, "a cluster IP, the backend given no cluster CIDRs")
	}
}

// PodToClusterIP: a pod's connection to a cluster IP (its endpoints other
// pods) keeps the pod's address, unless the backend masquerades all
// cluster-IP traffic (kube-proxy's masqueradeAll).
func podToClusterIP(e *env) {
	addr := e.vip(19, 80)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", addr.Port())})
	e.apply(svc, e.slice(svc, e.ready(0), e.ready(1)))
	e.sync()
	pod := e.n.Pod(2)
	masq := e.n.MasqueradeAll()
	for i := range 4 {
		a, err := e.n.DialTCPAnswerFrom(e.t.Context(), pod.NS, netip.Addr{}, addr, e.opts.Timeout)
		if err != nil {
			e.t.Fatalf("pod %s to cluster IP %v, connection %d: %v", pod.Name, addr, i+1, err)
		}
		if a.Pod != e.name(0) && a.Pod != e.name(1) {
			e.t.Fatalf("pod %s to cluster IP %v answered by %q, want %s or %s", pod.Name, addr, a.Pod, e.name(0), e.name(1))
		}
		if e.opts.IgnoreSource {
			continue
		}
		seen := a.Source.Addr()
		switch {
		case masq && !e.n.IsNodeAddr(seen):
			e.t.Fatalf("%s saw pod %s's connection to %v come from %v; want it masqueraded to a node address (MasqueradeAll)", a.Pod, pod.Name, addr, seen)
		case !masq && seen != pod.IP:
			e.t.Fatalf("%s saw pod %s's connection to %v come from %v; want the pod's own address %v", a.Pod, pod.Name, addr, seen, pod.IP)
		}
	}
}

// NotReadyEndpoint: an endpoint that turns not ready gets no new
// connections after the next (incremental) sync.
func notReadyEndpoint(e *env) {
	addr := e.vip(11, 80)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", addr.Port())})
	e.apply(svc, e.slice(svc, e.ready(0), e.ready(1), e.ready(2)))
	e.sync()
	expectTally(e.t, "3 ready endpoints", e.tally(e.client(), addr, 60), e.each(1, 0, 1, 2))

	e.apply(e.slice(svc, e.ready(0), e.notReady(1), e.ready(2)))
	e.sync()
	expectTally(e.t, e.name(1)+" not ready", e.tally(e.client(), addr, 60), e.each(1, 0, 2))
}

// TerminatingFallback: serving terminating endpoints are used only while no
// endpoint is ready.
func terminatingFallback(e *env) {
	addr := e.vip(12, 80)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", addr.Port())})
	e.apply(svc, e.slice(svc, e.ready(0), e.terminating(1), e.terminating(2)))
	e.sync()
	expectTally(e.t, "one ready, two terminating", e.tally(e.client(), addr, 30), e.each(30, 0))

	e.apply(e.slice(svc, e.notReady(0), e.terminating(1), e.terminating(2)))
	e.sync()
	expectTally(e.t, "none ready, two terminating", e.tally(e.client(), addr, 60), e.each(1, 1, 2))

	e.apply(e.slice(svc, e.notReady(0), e.terminating(1), e.ready(2)))
	e.sync()
	expectTally(e.t, "one ready again, one terminating", e.tally(e.client(), addr, 30), e.each(30, 2))
}

// NoEndpointsRejects: a service without usable endpoints refuses TCP and
// UDP at once, not by a timeout; with an endpoint it answers; when the
// endpoint goes it refuses again.
func noEndpointsRejects(e *env) {
	addr := e.vip(13, 80)
	dns := netip.AddrPortFrom(addr.Addr(), 53)
	svc := service("svc", addr, []v1.ServicePort{tcpPort("http", addr.Port()), udpPort("dns", dns.Port())})
	e.apply(svc)
	e.sync()
	e.expectRefused(v1.ProtocolTCP, addr, "no EndpointSlice")
	e.expectRefused(v1.ProtocolUDP, dns, "no EndpointSlice")

	e.apply(e.slice(svc, e.ready(0)))
	e.sync()
	expectTally(e.t, "TCP, one ready endpoint", e.tally(e.client(), addr, 5), e.each(5, 0))
	expectTally(e.t, "UDP, one ready endpoint", e.tallyUDP(dns, 5), e.each(5, 0))

	e.apply(e.slice(svc, e.notReady(0)))
	e.sync()
	e.expectRefused(v1.ProtocolTCP, addr, "only a not-ready endpoint")
	e.expectRefused(v1.ProtocolUDP, dns, "only a not-ready endpoint")
}

// SessionAffinity: ClientIP affinity keeps each client on one backend;
// turning it off spreads that client again.
func sessionAffinity(e *env) {
	addr := e.vip(14, 80)
	sticky := func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{
			ClientIP: &v1.ClientIPConfig{TimeoutSeconds: servicemaptest.Ptr[int32](10800)},
		}
	}
	ports := []v1.ServicePort{tcpPort("http", addr.Port())}
	svc := service("web", addr, ports, sticky)
	e.apply(svc, e.slice(svc, e.ready(0), e.ready(1), e.ready(2)))
	e.sync()
	only(e.t, e.tally(e.client(), addr, 30))
	only(e.t, e.tally(e.client2(), addr, 30))

	e.apply(service("web", addr, ports))
	e.sync()
	expectTally(e.t, "affinity turned off", e.tally(e.client(), addr, 90), e.each(1, 0, 1, 2))
}

// TCPAndUDPSamePort: a TCP and a UDP port with the same number are two
// service ports; each reaches its own endpoints.
func tcpAndUDPSamePort(e *env) {
	addr := e.vip(15, 53)
	svc := service("dns", addr, []v1.ServicePort{tcpPort("dns-tcp", 53), udpPort("dns-udp", 53)})
	// One slice per port, with different endpoints, so a rule that ignores
	// the protocol sends one of them to the wrong backend.
	tcpSlice := servicemaptest.Slice(namespace, "dns", "dns-tcp",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("dns-tcp", servePort, v1.ProtocolTCP)},
		[]servicemaptest.Endpoint{e.ready(0)})
	udpSlice := servicemaptest.Slice(namespace, "dns", "dns-udp",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("dns-udp", servePort, v1.ProtocolUDP)},
		[]servicemaptest.Endpoint{e.ready(1)})
	e.apply(svc, tcpSlice, udpSlice)
	e.sync()
	expectTally(e.t, "TCP port 53", e.tally(e.client(), addr, 20), e.each(20, 0))
	expectTally(e.t, "UDP port 53", e.tallyUDP(addr, 20), e.each(20, 1))
}

// NodePort: TCP and UDP node ports answer at NodeIP():nodePort and spread
// over the endpoints, masqueraded (externalTrafficPolicy Cluster: the
// endpoint may be on another node); the cluster IP still works.
func nodePort(e *env) {
	addr := e.vip(16, 80)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", 80), udpPort("dns", 53)},
		withNodePort(0, 30080), withNodePort(1, 30053))
	e.apply(svc, e.slice(svc, e.ready(0), e.remote(1), e.remote(2)))
	e.sync()
	expectTally(e.t, "TCP node port", e.tally(e.client(), netip.AddrPortFrom(e.n.NodeIP(), 30080), 60), e.each(1, 0, 1, 2))
	expectTally(e.t, "UDP node port", e.tallyUDP(netip.AddrPortFrom(e.n.NodeIP(), 30053), 45), e.each(1, 0, 1, 2))
	e.expectSource(netip.AddrPortFrom(e.n.NodeIP(), 30080), true, "a node port with externalTrafficPolicy Cluster")
	e.reach(e.client(), addr)
}

// NodeAddresses: a node port answers, over TCP and UDP, on every node
// address NodePortAddresses allows (each, when they hold no prefix of the
// Network's family) and on no other; never on loopback, also from the node
// itself (CVE-2020-8558).
func nodeAddresses(e *env) {
	addr := e.vip(27, 80)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", 80), udpPort("dns", 53)},
		withNodePort(0, 30084), withNodePort(1, 30056))
	e.apply(svc, e.slice(svc, e.ready(0), e.ready(1), e.ready(2)))
	e.sync()
	var allowed []netip.Prefix
	for _, p := range e.n.NodePortAddresses() {
		if p.Addr().Is6() == e.variant.IPv6 {
			allowed = append(allowed, p)
		}
	}
	for _, ip := range e.n.NodeIPs() {
		tcp, udp := netip.AddrPortFrom(ip, 30084), netip.AddrPortFrom(ip, 30056)
		if len(allowed) == 0 || slices.ContainsFunc(allowed, func(p netip.Prefix) bool { return p.Contains(ip) }) {
			expectTally(e.t, "TCP node port on "+ip.String(), e.tally(e.client(), tcp, 30), e.each(1, 0, 1, 2))
			expectTally(e.t, "UDP node port on "+ip.String(), e.tallyUDP(udp, 30), e.each(1, 0, 1, 2))
			continue
		}
		why := fmt.Sprintf("node port on %v, outside NodePortAddresses %v", ip, allowed)
		if name, err := e.n.DialTCP(e.t.Context(), netip.Addr{}, tcp, e.opts.DropTimeout); err == nil {
			e.t.Fatalf("%s: TCP answered by %s", why, name)
		}
		if name, err := e.n.DialUDP(e.t.Context(), 0, udp, e.opts.DropTimeout); err == nil {
			e.t.Fatalf("%s: UDP answered by %s", why, name)
		}
	}
	loop := netip.AddrPortFrom(e.n.Loopback(), 30084)
	if name, err := e.n.DialTCPFrom(e.n.NodeNS(), netip.Addr{}, loop, e.opts.DropTimeout); err == nil {
		e.t.Fatalf("node port on loopback, from the node: answered by %s", name)
	}
	e.reach(e.client(), addr)
}

// ExternalTrafficPolicyLocal: external traffic to a node port goes only to
// local endpoints, with the client's own address (the point of the
// policy), and is dropped (not refused) when there are none here while
// remote ones exist; the cluster IP keeps using every endpoint.
func externalTrafficPolicyLocal(e *env) {
	addr := e.vip(17, 80)
	np := netip.AddrPortFrom(e.n.NodeIP(), 30081)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", 80)}, withNodePort(0, int32(np.Port())),
		func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal })
	e.apply(svc, e.slice(svc, e.ready(0), e.remote(1), e.remote(2)))
	e.sync()
	expectTally(e.t, "node port, one local endpoint", e.tally(e.client(), np, 30), e.each(30, 0))
	e.expectSource(np, false, "a node port with externalTrafficPolicy Local")
	expectTally(e.t, "cluster IP, Cluster internal policy", e.tally(e.client(), addr, 60), e.each(1, 0, 1, 2))

	e.apply(e.slice(svc, e.notReady(0), e.remote(1), e.remote(2)))
	e.sync()
	e.expectDropped(e.client(), np, "node port with externalTrafficPolicy Local, no local endpoint, remote ones ready")
	expectTally(e.t, "cluster IP, remote endpoints", e.tally(e.client(), addr, 30), e.each(1, 1, 2))
}

// LoadBalancerSourceRanges: a load-balancer IP lets sources in the ranges
// in and drops the others; the ranges do not restrict the cluster IP, and
// removing them opens the load-balancer IP.
func loadBalancerSourceRanges(e *env) {
	addr := e.vip(18, 80)
	lb := netip.AddrPortFrom(e.externalIP(1), 80)
	ranged := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.LoadBalancerSourceRanges = []string{netip.PrefixFrom(e.client(), e.client().BitLen()).String()}
	}
	ingress := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: lb.Addr().String()}}
	}
	ports := []v1.ServicePort{tcpPort("http", 80)}
	svc := service("web", addr, ports, ingress, ranged, withNodePort(0, 30082))
	e.apply(svc, e.slice(svc, e.ready(0), e.ready(1), e.ready(2)))
	e.sync()
	expectTally(e.t, "load-balancer IP from an allowed source", e.tally(e.client(), lb, 60), e.each(1, 0, 1, 2))
	e.expectDropped(e.client2(), lb, "load-balancer IP from a source outside loadBalancerSourceRanges")
	e.reach(e.client2(), addr)

	e.apply(service("web", addr, ports, ingress, withNodePort(0, 30082)))
	e.sync()
	e.reach(e.client2(), lb)
}

// StaleUDPFlow: a UDP client that keeps its source port reaches the new
// endpoint once its old one is removed, through the cluster IP and through
// a node port: the stale conntrack flow was cleared.
func staleUDPFlow(e *env) {
	addr := e.vip(19, 53)
	np := netip.AddrPortFrom(e.n.NodeIP(), 30054)
	svc := service("dns", addr, []v1.ServicePort{udpPort("dns", 53)}, withNodePort(0, int32(np.Port())))
	e.apply(svc, e.slice(svc, e.ready(0)))
	e.sync()
	const clusterSrc, nodeSrc = 40053, 40054
	for range 2 {
		e.expectUDP(clusterSrc, addr, e.name(0), "before the change")
		e.expectUDP(nodeSrc, np, e.name(0), "before the change")
	}

	e.apply(e.slice(svc, e.ready(1)))
	e.sync()
	e.expectUDP(clusterSrc, addr, e.name(1), e.name(0)+" replaced by "+e.name(1)+" (a stale conntrack flow?)")
	e.expectUDP(nodeSrc, np, e.name(1), e.name(0)+" replaced by "+e.name(1)+" (a stale conntrack flow?)")
}

// expectSource makes one TCP connection from ClientIP to dst and checks
// the source address the backend saw: a node address when masqueraded,
// else ClientIP itself. SuiteOptions.IgnoreSource turns the check off.
func (e *env) expectSource(dst netip.AddrPort, masqueraded bool, why string) {
	e.t.Helper()
	if e.opts.IgnoreSource {
		return
	}
	a, err := e.n.DialTCPAnswer(e.t.Context(), e.client(), dst, e.opts.Timeout)
	if err != nil {
		e.t.Fatalf("%s: connection to %v from %v: %v", why, dst, e.client(), err)
	}
	seen := a.Source.Addr()
	switch {
	case masqueraded && !e.n.IsNodeAddr(seen):
		e.t.Fatalf("%s: %s saw the connection to %v come from %v; want it masqueraded to a node address", why, a.Pod, dst, seen)
	case !masqueraded && seen != e.client():
		e.t.Fatalf("%s: %s saw the connection to %v come from %v; want the client's own address %v (not masqueraded)", why, a.Pod, dst, seen, e.client())
	}
}

// expectUDP sends one datagram from ClientIP:srcPort and wants want to
// answer.
func (e *env) expectUDP(srcPort uint16, dst netip.AddrPort, want, why string) {
	e.t.Helper()
	got, err := e.n.DialUDP(e.t.Context(), srcPort, dst, e.opts.Timeout)
	if err != nil || got != want {
		e.t.Fatalf("%s: UDP from port %d to %v = %q, %v; want %q", why, srcPort, dst, got, err, want)
	}
}

// Cleanup: Cleanup removes every object of the backend, leaves objects of
// others alone, stops the traffic, and can run twice.
func cleanup(e *env) {
	web := e.vip(20, 80)
	sticky := func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{
			ClientIP: &v1.ClientIPConfig{TimeoutSeconds: servicemaptest.Ptr[int32](60)},
		}
	}
	svcs := []*v1.Service{
		service("web", web, []v1.ServicePort{tcpPort("http", 80)}, sticky),
		service("dns", e.vip(21, 53), []v1.ServicePort{udpPort("dns", 53)}, withNodePort(0, 30055),
			func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }),
		service("lb", e.vip(22, 80), []v1.ServicePort{tcpPort("http", 80)}, withNodePort(0, 30083),
			func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeLoadBalancer
				s.Spec.LoadBalancerSourceRanges = []string{netip.PrefixFrom(e.client(), e.client().BitLen()).String()}
				s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: e.externalIP(2).String()}}
			}),
		service("empty", e.vip(23, 80), []v1.ServicePort{tcpPort("http", 80)}),
	}
	for i, svc := range svcs[:3] {
		e.apply(svc, e.slice(svc, e.ready(i), e.remote((i+1)%3)))
	}
	e.apply(svcs[3])
	e.sync()
	e.reach(e.client(), web)
	if left := e.leftovers(); left == "" {
		e.t.Fatalf("Leftovers reports nothing while %s is programmed, so it could not see leftovers after Cleanup either", e.backend.Name())
	}

	if err := e.n.InNode(func() error { return e.backend.Cleanup(e.t.Context()) }); err != nil {
		e.t.Fatalf("%s Cleanup: %v", e.backend.Name(), err)
	}
	if left := e.leftovers(); left != "" {
		e.t.Errorf("after Cleanup, left over:\n%s", left)
	}
	if missing := e.foreignMissing(); missing != "" {
		e.t.Errorf("after Cleanup, objects the backend did not create are gone: %s", missing)
	}
	if name, err := e.n.DialTCP(e.t.Context(), netip.Addr{}, web, e.opts.DropTimeout); err == nil {
		e.t.Errorf("after Cleanup, %v still answered by %s", web, name)
	}
	if err := e.n.InNode(func() error { return e.backend.Cleanup(e.t.Context()) }); err != nil {
		e.t.Errorf("%s Cleanup a second time: %v", e.backend.Name(), err)
	}
}

// Restart: a new backend (a restarted process, with a new Tracker whose
// versions start again at 1) full-syncs a different state on top of what
// the old one left, and converges; an unchanged snapshot, incrementally or
// in full, changes nothing.
func restart(e *env) {
	kept, gone, added := e.vip(24, 80), e.vip(25, 80), e.vip(26, 80)
	ports := []v1.ServicePort{tcpPort("http", 80)}
	keptSvc, goneSvc, addedSvc := service("kept", kept, ports), service("gone", gone, ports), service("added", added, ports)
	e.apply(keptSvc, e.slice(keptSvc, e.ready(0), e.ready(1), e.ready(2)), goneSvc, e.slice(goneSvc, e.ready(0)))
	e.sync()
	expectTally(e.t, "before the restart", e.tally(e.client(), kept, 60), e.each(1, 0, 1, 2))
	expectTally(e.t, "before the restart", e.tally(e.client(), gone, 5), e.each(5, 0))

	e.restart()
	e.tracker = e.newTracker()
	e.apply(keptSvc, e.slice(keptSvc, e.ready(1), e.ready(2)), addedSvc, e.slice(addedSvc, e.ready(2)))
	snap := e.fullSync()
	check := func(when string) {
		e.t.Helper()
		expectTally(e.t, when+": endpoint "+e.name(0)+" removed", e.tally(e.client(), kept, 60), e.each(1, 1, 2))
		expectTally(e.t, when+": service added", e.tally(e.client(), added, 5), e.each(5, 2))
		if name, err := e.n.DialTCP(e.t.Context(), netip.Addr{}, gone, e.opts.DropTimeout); err == nil {
			e.t.Fatalf("%s: removed service %v still answered by %s", when, gone, name)
		}
	}
	check("full sync after a restart")
	e.syncFrom(snap, snap)
	check("incremental sync of an unchanged snapshot")
	e.syncFrom(nil, snap)
	check("full sync of an unchanged snapshot")
}
