package backends_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

const planNode = "node-a"

// planPort resolves one Service with one port "p" (80/TCP, node port
// 30000+n) and one slice for node planNode, and returns its plan.
func planPort(t *testing.T, svc *v1.Service, eps ...servicemaptest.Endpoint) backends.PortPlan {
	t.Helper()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: planNode})
	tr.OnServiceAdd(svc)
	if eps != nil {
		tr.OnEndpointSliceAdd(servicemaptest.Slice(svc.Namespace, svc.Name, svc.Name+"-1",
			[]discoveryv1.EndpointPort{servicemaptest.SlicePort("p", 8080, v1.ProtocolTCP)}, eps))
	}
	if w := tr.Warnings(); len(w) > 0 {
		t.Fatalf("warnings: %v", w)
	}
	ports := tr.Snapshot().Ports()
	if len(ports) != 1 {
		t.Fatalf("%d ports, want 1", len(ports))
	}
	return backends.Plan(ports[0])
}

// lbService is a LoadBalancer service with a node port, an external IP and
// a load-balancer IP, as in kube-proxy's masquerade tests.
func lbService(name string, mutate ...func(*v1.Service)) *v1.Service {
	all := append([]func(*v1.Service){func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalIPs = []string{"192.0.2.7"}
		s.Spec.HealthCheckNodePort = 30999
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.7"}}
	}}, mutate...)
	return servicemaptest.Service("ns", name, "10.96.0.40", []v1.ServicePort{servicemaptest.Port("p", 80, v1.ProtocolTCP)}, all...)
}

var (
	etpLocal = func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }
	itpLocal = func(s *v1.Service) {
		s.Spec.InternalTrafficPolicy = servicemaptest.Ptr(v1.ServiceInternalTrafficPolicyLocal)
	}
	ranges = func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24"} }
)

// A local and a remote ready endpoint.
var localAndRemote = []servicemaptest.Endpoint{servicemaptest.Ready("10.244.0.5", planNode), servicemaptest.Ready("10.244.1.5", "node-b")}

// decide is the outcome of a Decision as one readable line: the endpoints
// it goes to (or the verdict), then "masq" and "short-circuit" when set.
func decide(pl backends.PortPlan, c backends.Connection) string {
	d := pl.Decide(c)
	var parts []string
	if d.Verdict == backends.Forward {
		var eps []string
		for _, ep := range d.Endpoints {
			eps = append(eps, ep.Addr.Addr().String())
		}
		parts = append(parts, strings.Join(eps, ","))
	} else {
		parts = append(parts, d.Verdict.String())
	}
	if d.Masquerade {
		parts = append(parts, "masq")
	}
	if d.ShortCircuited {
		parts = append(parts, "short-circuit")
	}
	if d.Firewalled {
		parts = append(parts, "firewalled")
	}
	return strings.Join(parts, " ")
}

var (
	clientPod     = netip.MustParseAddr("10.244.2.9")
	clientOutside = netip.MustParseAddr("198.51.100.20")
)

// TestDecideMasqueradeAndPolicies follows kube-proxy's packet-flow cases
// for masquerading and traffic policies (nftables proxier tests,
// TestInternalExternalMasquerade): every source kind to every frontend
// kind, for Cluster policies, externalTrafficPolicy Local and
// internalTrafficPolicy Local, with and without a local-traffic detector
// (pod CIDRs known), and with masqueradeAll.
func TestDecideMasqueradeAndPolicies(t *testing.T) {
	type flow struct {
		from     backends.Source
		frontend backends.Frontend
	}
	pod, node, out := backends.FromPod, backends.FromNode, backends.FromOutside
	cip, np, lb, ext := backends.FrontendClusterIP, backends.FrontendNodePort, backends.FrontendLoadBalancerIP, backends.FrontendExternalIP
	both, localOnly := "10.244.0.5,10.244.1.5", "10.244.0.5"
	tests := []struct {
		name                     string
		svc                      *v1.Service
		podsKnown, masqueradeAll bool
		want                     map[flow]string
	}{{
		name: "cluster policies", svc: lbService("cluster"), podsKnown: true,
		want: map[flow]string{
			{pod, cip}: both, {pod, np}: both + " masq", {pod, lb}: both + " masq", {pod, ext}: both + " masq",
			{node, cip}: both + " masq", {node, np}: both + " masq", {node, lb}: both + " masq",
			{out, cip}: both + " masq", {out, np}: both + " masq", {out, lb}: both + " masq",
		},
	}, {
		name: "externalTrafficPolicy Local", svc: lbService("etp", etpLocal), podsKnown: true,
		want: map[flow]string{
			// Pods and the node are short-circuited to every endpoint:
			// pods keep their address, the node is masqueraded.
			{pod, cip}: both, {pod, np}: both + " short-circuit", {pod, lb}: both + " short-circuit",
			{pod, ext}:  both + " short-circuit",
			{node, cip}: both + " masq", {node, np}: both + " masq short-circuit", {node, lb}: both + " masq short-circuit",
			// Outside clients get the local endpoint and keep their address.
			{out, cip}: both + " masq", {out, np}: localOnly, {out, lb}: localOnly, {out, ext}: localOnly,
		},
	}, {
		name: "internalTrafficPolicy Local", svc: lbService("itp", itpLocal), podsKnown: true,
		want: map[flow]string{
			{pod, cip}: localOnly, {pod, np}: both + " masq", {pod, lb}: both + " masq",
			{node, cip}: localOnly + " masq", {node, np}: both + " masq", {node, lb}: both + " masq",
			{out, cip}: localOnly + " masq", {out, np}: both + " masq", {out, lb}: both + " masq",
		},
	}, {
		// masqueradeAll: every cluster-IP connection, a pod's included, and
		// with or without a detector; external traffic as without it.
		name: "masqueradeAll", svc: lbService("masqall", etpLocal), podsKnown: true, masqueradeAll: true,
		want: map[flow]string{
			{pod, cip}: both + " masq", {node, cip}: both + " masq", {out, cip}: both + " masq",
			{pod, lb}: both + " short-circuit", {node, lb}: both + " masq short-circuit", {out, lb}: localOnly,
		},
	}, {
		name: "masqueradeAll without a detector", svc: lbService("masqallnodetect"), masqueradeAll: true,
		want: map[flow]string{
			{pod, cip}: both + " masq", {out, cip}: both + " masq", {out, np}: both + " masq",
		},
	}, {
		// Without a detector nothing to a cluster IP is masqueraded, and
		// pods are not short-circuited (they cannot be recognised); the
		// node still is.
		name: "no local-traffic detector", svc: lbService("nodetect", etpLocal), podsKnown: false,
		want: map[flow]string{
			{pod, cip}: both, {node, cip}: both, {out, cip}: both,
			{pod, np}: localOnly, {pod, lb}: localOnly,
			{node, np}: both + " masq short-circuit", {node, lb}: both + " masq short-circuit",
			{out, np}: localOnly, {out, lb}: localOnly,
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl := planPort(t, tc.svc, localAndRemote...)
			got := map[flow]string{}
			for f := range tc.want {
				got[f] = decide(pl, backends.Connection{Frontend: f.frontend, From: f.from, PodsKnown: tc.podsKnown, MasqueradeAll: tc.masqueradeAll})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecideWithoutUsableEndpoints covers REJECT versus DROP, as kube-proxy
// decides them: no usable endpoint anywhere rejects every frontend; usable
// endpoints elsewhere but none for a Local policy here drop that traffic,
// while short-circuited traffic still reaches the remote endpoints.
func TestDecideWithoutUsableEndpoints(t *testing.T) {
	pod, node, out := backends.FromPod, backends.FromNode, backends.FromOutside
	cip, np, lb := backends.FrontendClusterIP, backends.FrontendNodePort, backends.FrontendLoadBalancerIP
	remote := servicemaptest.Ready("10.244.1.5", "node-b")
	tests := []struct {
		name string
		svc  *v1.Service
		eps  []servicemaptest.Endpoint
		want map[[2]uint8]string
	}{{
		name: "no slice", svc: lbService("none"),
		want: map[[2]uint8]string{{uint8(pod), uint8(cip)}: "reject", {uint8(out), uint8(np)}: "reject", {uint8(node), uint8(lb)}: "reject"},
	}, {
		name: "only not ready", svc: lbService("notready", etpLocal), eps: []servicemaptest.Endpoint{servicemaptest.NotReady("10.244.0.5", planNode)},
		want: map[[2]uint8]string{{uint8(pod), uint8(cip)}: "reject", {uint8(out), uint8(lb)}: "reject", {uint8(node), uint8(np)}: "reject"},
	}, {
		name: "etp Local, only remote", svc: lbService("remote", etpLocal), eps: []servicemaptest.Endpoint{remote},
		want: map[[2]uint8]string{
			{uint8(out), uint8(np)}: "drop", {uint8(out), uint8(lb)}: "drop",
			{uint8(pod), uint8(lb)}: "10.244.1.5 short-circuit", {uint8(node), uint8(np)}: "10.244.1.5 masq short-circuit",
			{uint8(out), uint8(cip)}: "10.244.1.5 masq",
		},
	}, {
		name: "itp Local, only remote", svc: lbService("itpremote", itpLocal), eps: []servicemaptest.Endpoint{remote},
		want: map[[2]uint8]string{
			{uint8(pod), uint8(cip)}: "drop", {uint8(out), uint8(cip)}: "drop",
			{uint8(out), uint8(np)}: "10.244.1.5 masq",
		},
	}, {
		name: "terminating fallback", svc: lbService("term"),
		eps:  []servicemaptest.Endpoint{servicemaptest.Terminating("10.244.0.5", planNode), servicemaptest.NotReady("10.244.1.5", "node-b")},
		want: map[[2]uint8]string{{uint8(pod), uint8(cip)}: "10.244.0.5", {uint8(out), uint8(lb)}: "10.244.0.5 masq"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl := planPort(t, tc.svc, tc.eps...)
			got := map[[2]uint8]string{}
			for k := range tc.want {
				got[k] = decide(pl, backends.Connection{From: backends.Source(k[0]), Frontend: backends.Frontend(k[1]), PodsKnown: true})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecideFirewall: source ranges filter the load-balancer IP only, and
// only for sources outside them; the cluster IP, external IPs and node port
// are not subject to them.
func TestDecideFirewall(t *testing.T) {
	pl := planPort(t, lbService("fw", ranges), localAndRemote...)
	if !pl.Firewall {
		t.Fatal("Firewall = false, want true")
	}
	for _, tc := range []struct {
		frontend backends.Frontend
		addr     netip.Addr
		want     string
	}{
		{backends.FrontendLoadBalancerIP, clientOutside, "10.244.0.5,10.244.1.5 masq"},
		{backends.FrontendLoadBalancerIP, netip.MustParseAddr("192.0.2.99"), "drop firewalled"},
		{backends.FrontendExternalIP, netip.MustParseAddr("192.0.2.99"), "10.244.0.5,10.244.1.5 masq"},
		{backends.FrontendNodePort, netip.MustParseAddr("192.0.2.99"), "10.244.0.5,10.244.1.5 masq"},
		{backends.FrontendClusterIP, netip.MustParseAddr("192.0.2.99"), "10.244.0.5,10.244.1.5 masq"},
	} {
		got := decide(pl, backends.Connection{Frontend: tc.frontend, Addr: tc.addr, PodsKnown: true})
		if got != tc.want {
			t.Errorf("%v from %v = %q, want %q", tc.frontend, tc.addr, got, tc.want)
		}
	}
}

// TestPlanRoutes checks the structural facts data planes build from: which
// lists exist, the routes' verdicts, the external chain and the
// short-circuit.
func TestPlanRoutes(t *testing.T) {
	type summary struct {
		Cluster, Local        int
		Internal, External    string
		Exposed, ExternalHook bool
		ShortCircuit          bool
		Firewall              bool
		Affinity              int
	}
	sum := func(pl backends.PortPlan) summary {
		route := func(r backends.Route) string {
			s := r.Verdict.String()
			if r.Local {
				s += "/local"
			}
			return s
		}
		return summary{
			Cluster: len(pl.Cluster), Local: len(pl.Local),
			Internal: route(pl.Internal), External: route(pl.External),
			Exposed: pl.Exposed, ExternalHook: pl.UsesExternalChain(), ShortCircuit: pl.ShortCircuit,
			Firewall: pl.Firewall, Affinity: pl.AffinitySeconds,
		}
	}
	clusterIP := func(name string, m ...func(*v1.Service)) *v1.Service {
		return servicemaptest.Service("ns", name, "10.96.0.41", []v1.ServicePort{servicemaptest.Port("p", 80, v1.ProtocolTCP)}, m...)
	}
	sticky := func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: servicemaptest.Ptr[int32](600)}}
	}
	tests := []struct {
		name string
		svc  *v1.Service
		eps  []servicemaptest.Endpoint
		want summary
	}{
		{"cluster IP", clusterIP("a"), localAndRemote,
			summary{Cluster: 2, Internal: "forward", External: "forward"}},
		{"cluster IP, itp Local", clusterIP("b", itpLocal), localAndRemote,
			summary{Local: 1, Internal: "forward/local", External: "forward"}},
		{"cluster IP, no endpoints", clusterIP("c"), nil,
			summary{Internal: "reject", External: "forward"}},
		{"load balancer", lbService("d", ranges, sticky), localAndRemote,
			summary{Cluster: 2, Internal: "forward", External: "forward", Exposed: true, ExternalHook: true, Firewall: true, Affinity: 600}},
		{"load balancer, etp Local", lbService("e", etpLocal), localAndRemote,
			summary{Cluster: 2, Local: 1, Internal: "forward", External: "forward/local", Exposed: true, ExternalHook: true, ShortCircuit: true}},
		{"load balancer, etp Local, remote only", lbService("f", etpLocal), localAndRemote[1:],
			summary{Cluster: 1, Internal: "forward", External: "drop/local", Exposed: true, ExternalHook: true, ShortCircuit: true}},
		{"load balancer, no endpoints", lbService("g", etpLocal, ranges), nil,
			summary{Internal: "reject", External: "reject/local", Exposed: true, Firewall: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := sum(planPort(t, tc.svc, tc.eps...))
			// A port that is not exposed has the zero External route.
			if !tc.want.Exposed {
				tc.want.External = "forward"
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAllowedSources(t *testing.T) {
	pl := planPort(t, lbService("fw", func(s *v1.Service) {
		s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8", "10.1.0.0/16", "198.51.100.0/24"}
	}), localAndRemote...)
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	if diff := cmp.Diff(pfx("10.0.0.0/8", "198.51.100.0/24"), pl.AllowedSources(nil), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("AllowedSources(no node IP) (-want +got):\n%s", diff)
	}
	// A range holding a node address admits the load-balancer IP as a source.
	got := pl.AllowedSources([]netip.Addr{netip.MustParseAddr("10.3.0.1")})
	if diff := cmp.Diff(pfx("10.0.0.0/8", "198.51.100.0/24", "203.0.113.7/32"), got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("AllowedSources(node IP in a range) (-want +got):\n%s", diff)
	}
}

func TestPlanAllocatesNothing(t *testing.T) {
	pl := planPort(t, lbService("alloc", etpLocal, ranges), localAndRemote...)
	var sink backends.PortPlan
	if n := testing.AllocsPerRun(100, func() { sink = backends.Plan(pl.Port) }); n != 0 {
		t.Errorf("Plan allocates %v times, want 0", n)
	}
	var d backends.Decision
	c := backends.Connection{Frontend: backends.FrontendLoadBalancerIP, From: backends.FromPod, PodsKnown: true, Addr: clientPod}
	if n := testing.AllocsPerRun(100, func() { d = sink.Decide(c) }); n != 0 {
		t.Errorf("Decide allocates %v times, want 0", n)
	}
	_ = d
}
