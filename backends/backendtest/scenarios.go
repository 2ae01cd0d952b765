package backendtest

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/internal/testobj"
)

// scenarios are Run's subtests, in order. Each builds its own objects and
// asserts on real traffic; none passes without the backend doing its part
// (a backend that programs nothing fails every one).
var scenarios = []scenario{
	{"ClusterIPSpread", clusterIPSpread},
	{"NotReadyEndpoint", notReadyEndpoint},
	{"TerminatingFallback", terminatingFallback},
	{"NoEndpointsRejects", noEndpointsRejects},
	{"SessionAffinity", sessionAffinity},
	{"TCPAndUDPSamePort", tcpAndUDPSamePort},
	{"NodePort", nodePort},
	{"ExternalTrafficPolicyLocal", externalTrafficPolicyLocal},
	{"LoadBalancerSourceRanges", loadBalancerSourceRanges},
	{"StaleUDPFlow", staleUDPFlow},
	{"Cleanup", cleanup},
	{"Restart", restart},
}

// The scenarios' objects: namespace, the node the Tracker resolves for,
// another node for remote endpoints, and the port every backend serves.
const (
	namespace  = "conformance"
	localNode  = "node"
	remoteNode = "other"
	servePort  = 8080
)

// lbIP is the load-balancer ingress IP of LoadBalancer services, in the
// Network's ExternalCIDR: the client's default route leads to the node,
// and the node routes it as a real node's default route would.
var lbIP = netip.MustParseAddr("10.97.0.1")

func vip(s string, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(s), port)
}

func service(name string, clusterIP netip.AddrPort, ports []v1.ServicePort, mutate ...func(*v1.Service)) *v1.Service {
	return testobj.Service(namespace, name, clusterIP.Addr().String(), ports, mutate...)
}

func tcpPort(name string, port uint16) v1.ServicePort {
	return testobj.Port(name, int32(port), v1.ProtocolTCP)
}

func udpPort(name string, port uint16) v1.ServicePort {
	return testobj.Port(name, int32(port), v1.ProtocolUDP)
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
func slice(svc *v1.Service, eps ...testobj.Endpoint) *discoveryv1.EndpointSlice {
	var ports []discoveryv1.EndpointPort
	for _, p := range svc.Spec.Ports {
		ports = append(ports, testobj.SlicePort(p.Name, servePort, p.Protocol))
	}
	return testobj.Slice(namespace, svc.Name, svc.Name+"-1", ports, eps)
}

// Endpoints on backend i: ready, not ready, or terminating (serving), on
// this node or on another one.
func (e *env) ready(i int) testobj.Endpoint { return testobj.Ready(e.ip(i), localNode) }
func (e *env) remote(i int) testobj.Endpoint {
	return testobj.Ready(e.ip(i), remoteNode)
}
func (e *env) notReady(i int) testobj.Endpoint    { return testobj.NotReady(e.ip(i), localNode) }
func (e *env) terminating(i int) testobj.Endpoint { return testobj.Terminating(e.ip(i), localNode) }

func (e *env) ip(i int) string     { return e.n.backends[i].IP.String() }
func (e *env) name(i int) string   { return e.n.backends[i].Name }
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
// an even share.
func clusterIPSpread(e *env) {
	addr := vip("10.96.0.10", 80)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", addr.Port())})
	e.apply(svc, slice(svc, e.ready(0), e.ready(1), e.ready(2)))
	e.sync()
	got := e.tally(e.client(), addr, 300)
	expectTally(e.t, "300 connections to a cluster IP with 3 ready endpoints", got, e.each(50, 0, 1, 2))
}

// NotReadyEndpoint: an endpoint that turns not ready gets no new
// connections after the next (incremental) sync.
func notReadyEndpoint(e *env) {
	addr := vip("10.96.0.11", 80)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", addr.Port())})
	e.apply(svc, slice(svc, e.ready(0), e.ready(1), e.ready(2)))
	e.sync()
	expectTally(e.t, "3 ready endpoints", e.tally(e.client(), addr, 60), e.each(1, 0, 1, 2))

	e.apply(slice(svc, e.ready(0), e.notReady(1), e.ready(2)))
	e.sync()
	expectTally(e.t, e.name(1)+" not ready", e.tally(e.client(), addr, 60), e.each(1, 0, 2))
}

// TerminatingFallback: serving terminating endpoints are used only while no
// endpoint is ready.
func terminatingFallback(e *env) {
	addr := vip("10.96.0.12", 80)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", addr.Port())})
	e.apply(svc, slice(svc, e.ready(0), e.terminating(1), e.terminating(2)))
	e.sync()
	expectTally(e.t, "one ready, two terminating", e.tally(e.client(), addr, 30), e.each(30, 0))

	e.apply(slice(svc, e.notReady(0), e.terminating(1), e.terminating(2)))
	e.sync()
	expectTally(e.t, "none ready, two terminating", e.tally(e.client(), addr, 60), e.each(1, 1, 2))

	e.apply(slice(svc, e.notReady(0), e.terminating(1), e.ready(2)))
	e.sync()
	expectTally(e.t, "one ready again, one terminating", e.tally(e.client(), addr, 30), e.each(30, 2))
}

// NoEndpointsRejects: a service without usable endpoints refuses TCP and
// UDP at once, not by a timeout; with an endpoint it answers; when the
// endpoint goes it refuses again.
func noEndpointsRejects(e *env) {
	addr := vip("10.96.0.13", 80)
	dns := netip.AddrPortFrom(addr.Addr(), 53)
	svc := service("svc", addr, []v1.ServicePort{tcpPort("http", addr.Port()), udpPort("dns", dns.Port())})
	e.apply(svc)
	e.sync()
	e.expectRefused(v1.ProtocolTCP, addr, "no EndpointSlice")
	e.expectRefused(v1.ProtocolUDP, dns, "no EndpointSlice")

	e.apply(slice(svc, e.ready(0)))
	e.sync()
	expectTally(e.t, "TCP, one ready endpoint", e.tally(e.client(), addr, 5), e.each(5, 0))
	expectTally(e.t, "UDP, one ready endpoint", e.tallyUDP(dns, 5), e.each(5, 0))

	e.apply(slice(svc, e.notReady(0)))
	e.sync()
	e.expectRefused(v1.ProtocolTCP, addr, "only a not-ready endpoint")
	e.expectRefused(v1.ProtocolUDP, dns, "only a not-ready endpoint")
}

// SessionAffinity: ClientIP affinity keeps each client on one backend;
// turning it off spreads that client again.
func sessionAffinity(e *env) {
	addr := vip("10.96.0.14", 80)
	sticky := func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{
			ClientIP: &v1.ClientIPConfig{TimeoutSeconds: testobj.Ptr[int32](10800)},
		}
	}
	ports := []v1.ServicePort{tcpPort("http", addr.Port())}
	svc := service("web", addr, ports, sticky)
	e.apply(svc, slice(svc, e.ready(0), e.ready(1), e.ready(2)))
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
	addr := vip("10.96.0.15", 53)
	svc := service("dns", addr, []v1.ServicePort{tcpPort("dns-tcp", 53), udpPort("dns-udp", 53)})
	// One slice per port, with different endpoints, so a rule that ignores
	// the protocol sends one of them to the wrong backend.
	tcpSlice := testobj.Slice(namespace, "dns", "dns-tcp",
		[]discoveryv1.EndpointPort{testobj.SlicePort("dns-tcp", servePort, v1.ProtocolTCP)},
		[]testobj.Endpoint{e.ready(0)})
	udpSlice := testobj.Slice(namespace, "dns", "dns-udp",
		[]discoveryv1.EndpointPort{testobj.SlicePort("dns-udp", servePort, v1.ProtocolUDP)},
		[]testobj.Endpoint{e.ready(1)})
	e.apply(svc, tcpSlice, udpSlice)
	e.sync()
	expectTally(e.t, "TCP port 53", e.tally(e.client(), addr, 20), e.each(20, 0))
	expectTally(e.t, "UDP port 53", e.tallyUDP(addr, 20), e.each(20, 1))
}

// NodePort: TCP and UDP node ports answer at NodeIP():nodePort and spread
// over the endpoints; the cluster IP still works.
func nodePort(e *env) {
	addr := vip("10.96.0.16", 80)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", 80), udpPort("dns", 53)},
		withNodePort(0, 30080), withNodePort(1, 30053))
	e.apply(svc, slice(svc, e.ready(0), e.remote(1), e.remote(2)))
	e.sync()
	expectTally(e.t, "TCP node port", e.tally(e.client(), netip.AddrPortFrom(e.n.NodeIP(), 30080), 60), e.each(1, 0, 1, 2))
	expectTally(e.t, "UDP node port", e.tallyUDP(netip.AddrPortFrom(e.n.NodeIP(), 30053), 45), e.each(1, 0, 1, 2))
	e.reach(e.client(), addr)
}

// ExternalTrafficPolicyLocal: external traffic to a node port goes only to
// local endpoints, and is dropped (not refused) when there are none here
// while remote ones exist; the cluster IP keeps using every endpoint.
func externalTrafficPolicyLocal(e *env) {
	addr := vip("10.96.0.17", 80)
	np := netip.AddrPortFrom(e.n.NodeIP(), 30081)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", 80)}, withNodePort(0, int32(np.Port())),
		func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal })
	e.apply(svc, slice(svc, e.ready(0), e.remote(1), e.remote(2)))
	e.sync()
	expectTally(e.t, "node port, one local endpoint", e.tally(e.client(), np, 30), e.each(30, 0))
	expectTally(e.t, "cluster IP, Cluster internal policy", e.tally(e.client(), addr, 60), e.each(1, 0, 1, 2))

	e.apply(slice(svc, e.notReady(0), e.remote(1), e.remote(2)))
	e.sync()
	e.expectDropped(e.client(), np, "node port with externalTrafficPolicy Local, no local endpoint, remote ones ready")
	expectTally(e.t, "cluster IP, remote endpoints", e.tally(e.client(), addr, 30), e.each(1, 1, 2))
}

// LoadBalancerSourceRanges: a load-balancer IP lets sources in the ranges
// in and drops the others; the ranges do not restrict the cluster IP, and
// removing them opens the load-balancer IP.
func loadBalancerSourceRanges(e *env) {
	addr := vip("10.96.0.18", 80)
	lb := netip.AddrPortFrom(lbIP, 80)
	ranged := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.LoadBalancerSourceRanges = []string{netip.PrefixFrom(e.client(), 32).String()}
	}
	ingress := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: lbIP.String()}}
	}
	ports := []v1.ServicePort{tcpPort("http", 80)}
	svc := service("web", addr, ports, ingress, ranged, withNodePort(0, 30082))
	e.apply(svc, slice(svc, e.ready(0), e.ready(1), e.ready(2)))
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
	addr := vip("10.96.0.19", 53)
	np := netip.AddrPortFrom(e.n.NodeIP(), 30054)
	svc := service("dns", addr, []v1.ServicePort{udpPort("dns", 53)}, withNodePort(0, int32(np.Port())))
	e.apply(svc, slice(svc, e.ready(0)))
	e.sync()
	const clusterSrc, nodeSrc = 40053, 40054
	for range 2 {
		e.expectUDP(clusterSrc, addr, e.name(0), "before the change")
		e.expectUDP(nodeSrc, np, e.name(0), "before the change")
	}

	e.apply(slice(svc, e.ready(1)))
	e.sync()
	e.expectUDP(clusterSrc, addr, e.name(1), e.name(0)+" replaced by "+e.name(1)+" (a stale conntrack flow?)")
	e.expectUDP(nodeSrc, np, e.name(1), e.name(0)+" replaced by "+e.name(1)+" (a stale conntrack flow?)")
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
	web := vip("10.96.0.20", 80)
	sticky := func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{
			ClientIP: &v1.ClientIPConfig{TimeoutSeconds: testobj.Ptr[int32](60)},
		}
	}
	svcs := []*v1.Service{
		service("web", web, []v1.ServicePort{tcpPort("http", 80)}, sticky),
		service("dns", vip("10.96.0.21", 53), []v1.ServicePort{udpPort("dns", 53)}, withNodePort(0, 30055),
			func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }),
		service("lb", vip("10.96.0.22", 80), []v1.ServicePort{tcpPort("http", 80)}, withNodePort(0, 30083),
			func(s *v1.Service) {
				s.Spec.Type = v1.ServiceTypeLoadBalancer
				s.Spec.LoadBalancerSourceRanges = []string{"10.100.0.2/32"}
				s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "10.97.0.2"}}
			}),
		service("empty", vip("10.96.0.23", 80), []v1.ServicePort{tcpPort("http", 80)}),
	}
	for i, svc := range svcs[:3] {
		e.apply(svc, slice(svc, e.ready(i), e.remote((i+1)%3)))
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
	kept, gone, added := vip("10.96.0.24", 80), vip("10.96.0.25", 80), vip("10.96.0.26", 80)
	ports := []v1.ServicePort{tcpPort("http", 80)}
	keptSvc, goneSvc, addedSvc := service("kept", kept, ports), service("gone", gone, ports), service("added", added, ports)
	e.apply(keptSvc, slice(keptSvc, e.ready(0), e.ready(1), e.ready(2)), goneSvc, slice(goneSvc, e.ready(0)))
	e.sync()
	expectTally(e.t, "before the restart", e.tally(e.client(), kept, 60), e.each(1, 0, 1, 2))
	expectTally(e.t, "before the restart", e.tally(e.client(), gone, 5), e.each(5, 0))

	e.restart()
	e.tracker = newTracker()
	e.apply(keptSvc, slice(keptSvc, e.ready(1), e.ready(2)), addedSvc, slice(addedSvc, e.ready(2)))
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
