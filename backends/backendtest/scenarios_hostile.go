package backendtest

import (
	"net/netip"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// Hostile neighbours: objects a user of the cluster could write (or that
// came through no API server) next to ordinary ones. The ordinary Services
// must keep working, exactly as without the neighbour.

// expectWarnings asserts that the Tracker reports a warning for each
// reason, and lets the next syncs proceed with them.
func (e *env) expectWarnings(reasons ...string) {
	e.t.Helper()
	var got []string
	for _, w := range e.tracker.Warnings() {
		got = append(got, w.Reason)
	}
	for _, r := range reasons {
		if !slices.Contains(got, r) {
			e.t.Fatalf("backendtest: no %s warning among %v", r, e.tracker.Warnings())
		}
	}
	e.warned = append(e.warned, reasons...)
}

func createdAt(minutes int) func(*v1.Service) {
	return func(s *v1.Service) {
		s.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, minutes, 0, 0, time.UTC))
	}
}

// AddressHijack (CVE-2020-8554): a Service naming another Service's
// cluster IP as its external IP and as its load-balancer IP does not take
// the address, even when it arrived first; between two external IPs the
// older Service keeps the address. Whatever the backend's table layout,
// the cluster IP reaches its own Service's endpoints only.
func addressHijack(e *env) {
	victim := e.vip(30, 80)
	evilIP := e.vip(31, 80)
	shared := netip.AddrPortFrom(e.externalIP(5), 80)
	ports := []v1.ServicePort{tcpPort("http", 80)}
	evil := service("evil", evilIP, ports, createdAt(0), func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.ExternalIPs = []string{victim.Addr().String(), shared.Addr().String()}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: victim.Addr().String()}}
	})
	// The hijacker first: it must not win by arriving early.
	e.apply(evil, e.slice(evil, e.ready(1)))
	e.sync()
	dns := service("dns", victim, ports, createdAt(10))
	older := service("older", e.vip(32, 80), ports, createdAt(-10), func(s *v1.Service) {
		s.Spec.ExternalIPs = []string{shared.Addr().String()}
	})
	e.apply(dns, e.slice(dns, e.ready(0)), older, e.slice(older, e.ready(2)))
	e.expectWarnings(servicemap.ReasonConflict)
	e.sync()
	expectTally(e.t, "the victim's cluster IP, a hijacker naming it", e.tally(e.client(), victim, 30), e.each(30, 0))
	expectTally(e.t, "an external IP two Services name: the older's", e.tally(e.client(), shared, 30), e.each(30, 2))
	expectTally(e.t, "the hijacker's own cluster IP", e.tally(e.client(), evilIP, 10), e.each(10, 1))

	// The owner goes: the address passes to the next claim, in one sync.
	e.remove(older)
	e.sync()
	expectTally(e.t, "the shared external IP once its owner is gone", e.tally(e.client(), shared, 10), e.each(10, 1))
	expectTally(e.t, "the victim's cluster IP after the change", e.tally(e.client(), victim, 10), e.each(10, 0))
}

// MalformedNeighbour: Services and slices the API server would have
// refused (a cluster IP of the other family, a port name with a newline, a
// name with a quote, loopback and link-local addresses as external IP and
// endpoint) are skipped with warnings, and do not stop the sync: the
// ordinary Services next to them work.
func malformedNeighbour(e *env) {
	web := e.vip(40, 80)
	ports := []v1.ServicePort{tcpPort("http", 80)}
	otherFamily, loopback, metadata := "fd00:96::41", "127.0.0.1", "169.254.169.254"
	family := v1.IPv4Protocol
	if e.variant.IPv6 {
		otherFamily, loopback, metadata, family = "10.96.0.41", "::1", "fe80::1", v1.IPv6Protocol
	}
	good := service("web", web, ports)
	wrongFamily := service("wrong-family", e.vip(41, 80), ports, func(s *v1.Service) {
		s.Spec.ClusterIP = otherFamily
		s.Spec.ClusterIPs = []string{otherFamily}
		s.Spec.IPFamilies = []v1.IPFamily{family}
	})
	portNames := service("port-names", e.vip(42, 80), []v1.ServicePort{tcpPort("a\nb", 81), tcpPort("http", 80)})
	quoted := service(`quo"ted`, e.vip(43, 80), ports)
	special := service("special", e.vip(44, 80), ports, func(s *v1.Service) {
		s.Spec.ExternalIPs = []string{loopback, metadata}
	})
	e.apply(good, e.slice(good, e.ready(0)),
		wrongFamily, e.slice(wrongFamily, e.ready(1)),
		portNames, e.slice(portNames, e.ready(1)),
		quoted, e.slice(quoted, e.ready(1)),
		special, e.slice(special, servicemaptest.Ready(loopback, localNode), servicemaptest.Ready(metadata, localNode), e.ready(2)))
	e.expectWarnings(servicemap.ReasonBadClusterIP, servicemap.ReasonBadName, servicemap.ReasonSpecialAddress)
	e.sync()
	expectTally(e.t, "an ordinary Service among malformed ones", e.tally(e.client(), web, 30), e.each(30, 0))
	expectTally(e.t, "the valid port of a Service with a malformed one", e.tally(e.client(), e.vip(42, 80), 10), e.each(10, 1))
	expectTally(e.t, "a Service whose special addresses were skipped", e.tally(e.client(), e.vip(44, 80), 20), e.each(20, 2))

	// A change to the good Service still goes through.
	e.apply(e.slice(good, e.ready(0), e.ready(1)))
	e.sync()
	expectTally(e.t, "the ordinary Service after a change", e.tally(e.client(), web, 60), e.each(1, 0, 1))
}
