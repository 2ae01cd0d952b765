package backendtest

import (
	"net/netip"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/servicemaptest"
)

// Field scenarios: failures operators reported against kube-proxy, each
// named after its upstream issue and shown with real packets. They are
// registered in scenarios (scenarios.go).

const (
	// streamInterval makes a UDPStream send about 1000 datagrams a second:
	// a busy statsd or syslog sender, whose flow never idles out.
	streamInterval = time.Millisecond
	// streamGrace lets datagrams in flight at the end of a sync be answered
	// before a stream is watched.
	streamGrace = 20 * time.Millisecond
	// streamWindow is how long a stream is watched for answers it must or
	// must not get once the data plane has changed.
	streamWindow = 300 * time.Millisecond
)

// stream starts a UDPStream from ClientIP:srcPort to dst for the rest of
// the scenario.
func (e *env) stream(srcPort uint16, dst netip.AddrPort) *UDPStream {
	e.t.Helper()
	s, err := e.n.StartUDPStream(srcPort, dst, streamInterval)
	if err != nil {
		e.t.Fatalf("backendtest: %v", err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// expectStreamsOn asserts, right after a sync, that every stream reaches
// backend want within Timeout (without another sync: the one that just
// ran must be enough), and then only want.
func (e *env) expectStreamsOn(why string, want string, streams ...*UDPStream) {
	e.t.Helper()
	for _, s := range streams {
		mark := s.Mark()
		if !s.WaitFor(mark, want, e.opts.Timeout) {
			e.t.Fatalf("%s: %v got no answer from %s within %v of the sync (answers since: %v); a stale flow blackholes it", why, s, want, e.opts.Timeout, s.Since(mark))
		}
	}
	marks := make([]int, len(streams))
	for i, s := range streams {
		marks[i] = s.Mark()
	}
	time.Sleep(streamWindow)
	for i, s := range streams {
		if got := s.Since(marks[i]); len(got) != 1 || got[want] == 0 {
			e.t.Fatalf("%s: %v answered by %v in %v; want only %s", why, s, got, streamWindow, want)
		}
	}
}

// expectStreamsSilent asserts, right after a sync that left the service
// without endpoints, that no stream is answered any more: no flow still
// leads to an endpoint that is gone.
func (e *env) expectStreamsSilent(why string, streams ...*UDPStream) {
	e.t.Helper()
	time.Sleep(streamGrace)
	marks := make([]int, len(streams))
	for i, s := range streams {
		marks[i] = s.Mark()
	}
	time.Sleep(streamWindow)
	for i, s := range streams {
		if got := s.Since(marks[i]); len(got) != 0 {
			e.t.Fatalf("%s: %v still answered by %v in %v; want nothing (the service has no endpoints: a stale flow?)", why, s, got, streamWindow)
		}
	}
}

// Kubernetes139628UDPScaleToZero (kubernetes#139628, #48370): a one-way
// UDP sender keeps one source port and never pauses. When its service
// scales to zero, its flow must stop reaching the removed endpoint (whose
// pod here still answers, as a reused address would); when an endpoint
// comes back, the flow must reach it after that one sync, and so must a
// flow that started while there was none.
func kubernetes139628UDPScaleToZero(e *env) {
	addr := e.vip(40, 53)
	svc := service("statsd", addr, []v1.ServicePort{udpPort("statsd", 53)})
	e.apply(svc, e.slice(svc, e.ready(0)))
	e.sync()
	early := e.stream(41001, addr)
	e.expectStreamsOn("one endpoint", e.name(0), early)

	e.apply(e.slice(svc))
	e.sync()
	e.expectStreamsSilent("scaled to zero", early)
	late := e.stream(41002, addr)
	e.expectStreamsSilent("scaled to zero, a stream started since", early, late)

	e.apply(e.slice(svc, e.ready(1)))
	e.sync()
	e.expectStreamsOn("scaled back to one endpoint", e.name(1), early, late)
}

// Kubernetes96174UDPNodePortExternalIP (kubernetes#96174, #75265): the
// endpoint transitions of a UDP service through a node port and an
// external IP, each with a one-way stream that keeps its source port:
// the endpoint replaced, another added (the flow stays where it is), the
// one in use removed, scaled to zero and back. After each sync every
// stream reaches the endpoint it must, and only that one.
func kubernetes96174UDPNodePortExternalIP(e *env) {
	addr := e.vip(41, 53)
	ext := netip.AddrPortFrom(e.externalIP(3), 53)
	np := netip.AddrPortFrom(e.n.NodeIP(), 30058)
	svc := service("syslog", addr, []v1.ServicePort{udpPort("syslog", 53)}, withNodePort(0, int32(np.Port())),
		func(s *v1.Service) { s.Spec.ExternalIPs = []string{ext.Addr().String()} })
	set := func(eps ...servicemaptest.Endpoint) {
		e.t.Helper()
		e.apply(e.slice(svc, eps...))
		e.sync()
	}
	e.apply(svc)
	set(e.ready(0))
	streams := []*UDPStream{e.stream(41003, np), e.stream(41004, ext)}
	e.expectStreamsOn("one endpoint", e.name(0), streams...)

	set(e.ready(1))
	e.expectStreamsOn(e.name(0)+" replaced by "+e.name(1), e.name(1), streams...)
	set(e.ready(1), e.ready(2))
	e.expectStreamsOn(e.name(2)+" added", e.name(1), streams...)
	set(e.ready(2))
	e.expectStreamsOn(e.name(1)+" removed", e.name(2), streams...)
	set()
	e.expectStreamsSilent("scaled to zero", streams...)
	set(e.ready(0))
	e.expectStreamsOn("scaled back to one endpoint", e.name(0), streams...)
}

// Kubernetes131765ExternalIPLocalFromPod (kubernetes#131765): a pod on a
// node without a local endpoint connects to an externalTrafficPolicy=Local
// service's external IP, and to its load-balancer IP. Pod traffic is not
// external: it must be short-circuited to the cluster's endpoints, never
// blackholed; a client outside the cluster is still dropped there.
func kubernetes131765ExternalIPLocalFromPod(e *env) {
	addr := e.vip(42, 80)
	ext := netip.AddrPortFrom(e.externalIP(4), 80)
	lb := netip.AddrPortFrom(e.externalIP(5), 80)
	svc := service("web", addr, []v1.ServicePort{tcpPort("http", 80)}, withNodePort(0, 30085), func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 30086
		s.Spec.ExternalIPs = []string{ext.Addr().String()}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: lb.Addr().String()}}
	})
	// Endpoints b0 and b1 on another node; b2 is a pod of this node that
	// is no endpoint.
	e.apply(svc, e.slice(svc, e.remote(0), e.remote(1)))
	e.sync()
	pod := e.n.Pod(2)
	for _, dst := range []netip.AddrPort{ext, lb} {
		got := map[string]int{}
		for i := range 20 {
			name, err := e.n.DialTCPFrom(pod.NS, netip.Addr{}, dst, e.opts.Timeout)
			if err != nil {
				e.t.Fatalf("pod %s to %v (externalTrafficPolicy Local, no local endpoint), connection %d: %v; want it short-circuited to the cluster's endpoints", pod.Name, dst, i+1, err)
			}
			got[name]++
		}
		expectTally(e.t, "pod to an externalTrafficPolicy=Local address without a local endpoint", got, e.each(1, 0, 1))
	}
	e.expectDropped(e.client(), ext, "client outside the cluster to an externalTrafficPolicy=Local external IP without a local endpoint")
	e.reach(e.client(), addr)
}
