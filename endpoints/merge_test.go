package endpoints_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemaptest"
)

// parseAll parses IPv4 slices, failing the test on any warning.
func parseAll(t *testing.T, ess ...*discoveryv1.EndpointSlice) []*endpoints.Slice {
	t.Helper()
	var out []*endpoints.Slice
	for _, es := range ess {
		s, warnings := endpoints.ParseSlice(es, v1.IPv4Protocol)
		if len(warnings) != 0 || s == nil {
			t.Fatalf("ParseSlice(%s) = %v, %v", es.Name, s, warnings)
		}
		out = append(out, s)
	}
	return out
}

// describe prints an endpoint's address and state, e.g.
// "10.0.0.1:80 serving terminating local".
func describe(e endpoints.Endpoint) string {
	var b strings.Builder
	b.WriteString(e.String())
	for _, f := range []struct {
		set  bool
		name string
	}{{e.Ready, "ready"}, {e.Serving, "serving"}, {e.Terminating, "terminating"}, {e.Local, "local"}} {
		if f.set {
			b.WriteString(" " + f.name)
		}
	}
	return b.String()
}

// view prints a Merge result as "name/protocol" -> described endpoints.
func view(pes []endpoints.PortEndpoints) map[string][]string {
	if pes == nil {
		return nil
	}
	out := make(map[string][]string, len(pes))
	for _, pe := range pes {
		k := pe.Name + "/" + string(pe.Protocol)
		out[k] = []string{}
		for _, e := range pe.Endpoints {
			out[k] = append(out[k], describe(e))
		}
	}
	return out
}

// mergeEveryOrder merges sl in every order of its elements and fails the
// test unless all orders give the same result, which it returns.
func mergeEveryOrder(t *testing.T, sl []*endpoints.Slice, node string) []endpoints.PortEndpoints {
	t.Helper()
	want := endpoints.Merge(sl, node)
	for _, perm := range permutations(sl) {
		got := endpoints.Merge(perm, node)
		if !equalResults(want, got) {
			t.Fatalf("Merge depends on slice order:\n%v\nversus\n%v", view(want), view(got))
		}
	}
	return want
}

func equalResults(a, b []endpoints.PortEndpoints) bool {
	return slices.EqualFunc(a, b, func(x, y endpoints.PortEndpoints) bool {
		return x.PortKey == y.PortKey && endpoints.EqualLists(x.Endpoints, y.Endpoints)
	})
}

func permutations[T any](s []T) [][]T {
	if len(s) <= 1 {
		return [][]T{slices.Clone(s)}
	}
	var out [][]T
	for i := range s {
		rest := slices.Concat(s[:i], s[i+1:])
		for _, p := range permutations(rest) {
			out = append(out, append([]T{s[i]}, p...))
		}
	}
	return out
}

// generated builds an EndpointSlice like the generator of kube-proxy's
// endpointslicecache tests: endpoints 10.0.<octet>.1 to .n; endpoint i is
// neither ready nor serving when i is a multiple of unreadyEvery, and
// terminating (so not ready) when i is a multiple of terminatingEvery (0 =
// never); it runs on hosts[i%len(hosts)]; port j is named "port-j".
func generated(sliceName string, octet, n, unreadyEvery, terminatingEvery int, hosts []string, ports ...int32) *discoveryv1.EndpointSlice {
	var sp []discoveryv1.EndpointPort
	for j, p := range ports {
		sp = append(sp, servicemaptest.SlicePort(fmt.Sprintf("port-%d", j), p, v1.ProtocolTCP))
	}
	multiple := func(i, every int) bool { return every > 0 && i%every == 0 }
	var eps []servicemaptest.Endpoint
	for i := 1; i <= n; i++ {
		serving := !multiple(i, unreadyEvery)
		term := multiple(i, terminatingEvery)
		e := servicemaptest.Endpoint{
			IP:          fmt.Sprintf("10.0.%d.%d", octet, i),
			Ready:       servicemaptest.Ptr(serving && !term),
			Serving:     servicemaptest.Ptr(serving),
			Terminating: servicemaptest.Ptr(term),
		}
		if len(hosts) > 0 {
			e.Node = hosts[i%len(hosts)]
		}
		eps = append(eps, e)
	}
	return servicemaptest.Slice("ns1", "svc1", sliceName, sp, eps)
}

// Cases of kube-proxy's TestEndpointsMapFromESC and
// TestEndpointInfoByServicePort. Where kube-proxy fed two versions of one
// slice (the same name twice, so the second replaced the first), the
// slices here have different names and Merge's preference decides.
func TestMergeKubeProxyCases(t *testing.T) {
	hosts := []string{"host1", "host2"}
	tests := []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		node   string
		want   map[string][]string
	}{
		{
			name:   "one slice on two hosts, ports 80 and 443",
			slices: []*discoveryv1.EndpointSlice{generated("svc1-1", 1, 3, 0, 0, hosts, 80, 443)},
			node:   "host1",
			want: map[string][]string{
				"port-0/TCP": {"10.0.1.1:80 ready serving", "10.0.1.2:80 ready serving local", "10.0.1.3:80 ready serving"},
				"port-1/TCP": {"10.0.1.1:443 ready serving", "10.0.1.2:443 ready serving local", "10.0.1.3:443 ready serving"},
			},
		},
		{
			name: "two slices, same port: union",
			slices: []*discoveryv1.EndpointSlice{
				generated("svc1-1", 1, 3, 0, 0, nil, 80),
				generated("svc1-2", 2, 3, 0, 0, nil, 80),
			},
			want: map[string][]string{"port-0/TCP": {
				"10.0.1.1:80 ready serving", "10.0.1.2:80 ready serving", "10.0.1.3:80 ready serving",
				"10.0.2.1:80 ready serving", "10.0.2.2:80 ready serving", "10.0.2.3:80 ready serving",
			}},
		},
		{
			name: "two overlapping slices, same port: union without duplicates",
			slices: []*discoveryv1.EndpointSlice{
				generated("svc1-1", 1, 3, 0, 0, nil, 80),
				generated("svc1-2", 1, 4, 0, 0, nil, 80),
			},
			want: map[string][]string{"port-0/TCP": {
				"10.0.1.1:80 ready serving", "10.0.1.2:80 ready serving", "10.0.1.3:80 ready serving", "10.0.1.4:80 ready serving",
			}},
		},
		{
			name: "overlapping slices, some endpoints unready in one or both: ready wins",
			slices: []*discoveryv1.EndpointSlice{
				generated("svc1-1", 1, 10, 3, 0, nil, 80),
				generated("svc1-2", 1, 10, 6, 0, nil, 80),
			},
			want: map[string][]string{"port-0/TCP": {
				"10.0.1.1:80 ready serving", "10.0.1.2:80 ready serving", "10.0.1.3:80 ready serving",
				"10.0.1.4:80 ready serving", "10.0.1.5:80 ready serving", "10.0.1.6:80",
				"10.0.1.7:80 ready serving", "10.0.1.8:80 ready serving", "10.0.1.9:80 ready serving",
				"10.0.1.10:80 ready serving",
			}},
		},
		{
			name: "overlapping slices, some endpoints unready and some terminating",
			slices: []*discoveryv1.EndpointSlice{
				generated("svc1-1", 1, 10, 3, 5, nil, 80),
				generated("svc1-2", 1, 10, 6, 5, nil, 80),
			},
			want: map[string][]string{"port-0/TCP": {
				"10.0.1.1:80 ready serving", "10.0.1.2:80 ready serving", "10.0.1.3:80 ready serving",
				"10.0.1.4:80 ready serving", "10.0.1.5:80 serving terminating", "10.0.1.6:80",
				"10.0.1.7:80 ready serving", "10.0.1.8:80 ready serving", "10.0.1.9:80 ready serving",
				"10.0.1.10:80 serving terminating",
			}},
		},
		{
			name: "overlapping slices, every endpoint unready",
			slices: []*discoveryv1.EndpointSlice{
				generated("svc1-1", 1, 3, 1, 0, nil, 80),
				generated("svc1-2", 1, 3, 1, 0, nil, 80),
			},
			want: map[string][]string{"port-0/TCP": {"10.0.1.1:80", "10.0.1.2:80", "10.0.1.3:80"}},
		},
		{
			name: "the same addresses on other port numbers are other endpoints",
			slices: []*discoveryv1.EndpointSlice{
				generated("svc1-1", 1, 2, 0, 0, hosts, 80),
				generated("svc1-2", 1, 2, 0, 0, hosts, 8080),
			},
			node: "host1",
			want: map[string][]string{"port-0/TCP": {
				"10.0.1.1:80 ready serving", "10.0.1.1:8080 ready serving",
				"10.0.1.2:80 ready serving local", "10.0.1.2:8080 ready serving local",
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeEveryOrder(t, parseAll(t, tt.slices...), tt.node)
			if diff := cmp.Diff(tt.want, view(got)); diff != "" {
				t.Errorf("Merge (-want +got):\n%s", diff)
			}
		})
	}
}

// kube-proxy's "nil port should not break anything": a slice whose only
// port has no number yields no port at all.
func TestMergeSliceWithoutUsablePort(t *testing.T) {
	es := generated("svc1-1", 1, 3, 0, 0, []string{"host1", "host2"})
	es.Ports = []discoveryv1.EndpointPort{{Name: servicemaptest.Ptr("port-0"), Protocol: servicemaptest.Ptr(v1.ProtocolTCP)}}
	s, warnings := endpoints.ParseSlice(es, v1.IPv4Protocol)
	if diff := cmp.Diff([]string{endpoints.ReasonBadPort}, reasons(warnings)); diff != "" {
		t.Errorf("warning reasons (-want +got):\n%s", diff)
	}
	if got := endpoints.Merge([]*endpoints.Slice{s}, "host1"); got != nil {
		t.Errorf("Merge = %v, want nil", view(got))
	}
}

func TestMergeEmpty(t *testing.T) {
	for name, sl := range map[string][]*endpoints.Slice{
		"nil":         nil,
		"empty":       {},
		"nil element": {nil},
	} {
		if got := endpoints.Merge(sl, "node-1"); got != nil {
			t.Errorf("%s: Merge = %v, want nil", name, view(got))
		}
	}
	s := parseAll(t, servicemaptest.Slice("ns", "web", "web-1", httpPort, []servicemaptest.Endpoint{servicemaptest.Ready("10.0.0.1", "")}))
	got := endpoints.Merge([]*endpoints.Slice{nil, s[0], nil}, "node-1")
	if diff := cmp.Diff(map[string][]string{"http/TCP": {"10.0.0.1:8080 ready serving"}}, view(got)); diff != "" {
		t.Errorf("nil slices among others (-want +got):\n%s", diff)
	}
}

// Two copies of one address:port: whichever slice is named first and
// whichever order the slices come in, the better copy is kept.
func TestMergePrefersBetterCopy(t *testing.T) {
	ready := servicemaptest.Ready("10.0.0.1", "node-2")
	notReady := servicemaptest.NotReady("10.0.0.1", "node-2")
	terminating := servicemaptest.Terminating("10.0.0.1", "node-2")
	// Serving but not ready: e.g. a pod whose readiness gate is not met.
	servingOnly := servicemaptest.Endpoint{IP: "10.0.0.1", Node: "node-2", Ready: servicemaptest.Ptr(false), Serving: servicemaptest.Ptr(true), Terminating: servicemaptest.Ptr(false)}
	// Terminating and no longer serving.
	stopped := servicemaptest.Endpoint{IP: "10.0.0.1", Node: "node-2", Ready: servicemaptest.Ptr(false), Serving: servicemaptest.Ptr(false), Terminating: servicemaptest.Ptr(true)}
	tests := []struct {
		name          string
		better, worse servicemaptest.Endpoint
		want          string
	}{
		{"ready over not ready", ready, notReady, "10.0.0.1:8080 ready serving"},
		{"ready over terminating", ready, terminating, "10.0.0.1:8080 ready serving"},
		{"ready over serving only", ready, servingOnly, "10.0.0.1:8080 ready serving"},
		// A pod IP reused by a new pod that is not ready yet, while the old
		// pod terminates: kube-proxy keeps the new pod's copy, and so no
		// traffic goes to the address until the new pod is ready.
		{"not terminating over terminating, even not ready over serving", notReady, terminating, "10.0.0.1:8080"},
		{"serving and terminating over terminating only", terminating, stopped, "10.0.0.1:8080 serving terminating"},
		{"not terminating over terminating", servingOnly, terminating, "10.0.0.1:8080 serving"},
		{"not terminating over terminating, neither serving", notReady, stopped, "10.0.0.1:8080"},
		{"local over remote", servicemaptest.Ready("10.0.0.1", "node-1"), ready, "10.0.0.1:8080 ready serving local"},
		{"ready remote over unready local", ready, servicemaptest.NotReady("10.0.0.1", "node-1"), "10.0.0.1:8080 ready serving"},
		{"ready remote over terminating local", ready, servicemaptest.Terminating("10.0.0.1", "node-1"), "10.0.0.1:8080 ready serving"},
	}
	for _, tt := range tests {
		for _, names := range [][2]string{{"web-a", "web-b"}, {"web-b", "web-a"}} {
			t.Run(tt.name+"/better in "+names[0], func(t *testing.T) {
				better := servicemaptest.Slice("ns", "web", names[0], httpPort, []servicemaptest.Endpoint{tt.better})
				worse := servicemaptest.Slice("ns", "web", names[1], httpPort, []servicemaptest.Endpoint{tt.worse})
				got := mergeEveryOrder(t, parseAll(t, better, worse), "node-1")
				if diff := cmp.Diff(map[string][]string{"http/TCP": {tt.want}}, view(got)); diff != "" {
					t.Errorf("Merge (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// Copies that tie on every condition differ in what they say about the
// endpoint (here its zone and hints); the copy of the slice whose name sorts
// first is kept.
func TestMergeTieGoesToFirstSliceName(t *testing.T) {
	copyIn := func(sliceName, zone string) *discoveryv1.EndpointSlice {
		e := servicemaptest.Ready("10.0.0.1", "node-2")
		e.Zone, e.ZoneHints = zone, []string{zone}
		return servicemaptest.Slice("ns", "web", sliceName, httpPort, []servicemaptest.Endpoint{e})
	}
	sl := parseAll(t, copyIn("web-b", "zone-b"), copyIn("web-a", "zone-a"), copyIn("web-c", "zone-c"))
	got := mergeEveryOrder(t, sl, "node-1")
	if len(got) != 1 || len(got[0].Endpoints) != 1 {
		t.Fatalf("Merge = %v, want one endpoint", view(got))
	}
	if e := got[0].Endpoints[0]; e.Zone != "zone-a" || !slices.Equal(e.ZoneHints, []string{"zone-a"}) {
		t.Errorf("kept the copy with zone %q and hints %v, want the one from web-a (zone-a)", e.Zone, e.ZoneHints)
	}
}

// The EndpointSlice controller moves an endpoint by adding it to one slice
// before removing it from the other, and a proxy may see the updates in any
// order; at no step may the endpoint disappear.
func TestMergeAddressMovingBetweenSlices(t *testing.T) {
	a := servicemaptest.Ready("10.0.0.1", "node-1")
	b := servicemaptest.Ready("10.0.0.2", "node-2")
	bTerminating := servicemaptest.Terminating("10.0.0.2", "node-2")
	c := servicemaptest.Ready("10.0.0.3", "node-3")
	steps := []struct {
		name     string
		old, new []servicemaptest.Endpoint
		want     []string
	}{
		{"before the move", []servicemaptest.Endpoint{a, b}, []servicemaptest.Endpoint{c}, []string{"10.0.0.1:8080 ready serving local", "10.0.0.2:8080 ready serving", "10.0.0.3:8080 ready serving"}},
		{"in both slices", []servicemaptest.Endpoint{a, b}, []servicemaptest.Endpoint{b, c}, []string{"10.0.0.1:8080 ready serving local", "10.0.0.2:8080 ready serving", "10.0.0.3:8080 ready serving"}},
		{"old copy already terminating", []servicemaptest.Endpoint{a, bTerminating}, []servicemaptest.Endpoint{b, c}, []string{"10.0.0.1:8080 ready serving local", "10.0.0.2:8080 ready serving", "10.0.0.3:8080 ready serving"}},
		{"new copy not yet ready", []servicemaptest.Endpoint{a, b}, []servicemaptest.Endpoint{servicemaptest.NotReady("10.0.0.2", "node-2"), c}, []string{"10.0.0.1:8080 ready serving local", "10.0.0.2:8080 ready serving", "10.0.0.3:8080 ready serving"}},
		{"after the move", []servicemaptest.Endpoint{a}, []servicemaptest.Endpoint{b, c}, []string{"10.0.0.1:8080 ready serving local", "10.0.0.2:8080 ready serving", "10.0.0.3:8080 ready serving"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			sl := parseAll(t,
				servicemaptest.Slice("ns", "web", "web-old", httpPort, st.old),
				servicemaptest.Slice("ns", "web", "web-new", httpPort, st.new))
			got := mergeEveryOrder(t, sl, "node-1")
			if diff := cmp.Diff(map[string][]string{"http/TCP": st.want}, view(got)); diff != "" {
				t.Errorf("Merge (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMergeLocal(t *testing.T) {
	es := servicemaptest.Slice("ns", "web", "web-1", httpPort, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.0.0.1", "node-1"),
		servicemaptest.Ready("10.0.0.2", "node-2"),
		servicemaptest.Ready("10.0.0.3", ""), // no nodeName
	})
	tests := []struct {
		node string
		want []string
	}{
		{"node-1", []string{"10.0.0.1:8080 ready serving local", "10.0.0.2:8080 ready serving", "10.0.0.3:8080 ready serving"}},
		{"node-2", []string{"10.0.0.1:8080 ready serving", "10.0.0.2:8080 ready serving local", "10.0.0.3:8080 ready serving"}},
		{"Node-1", []string{"10.0.0.1:8080 ready serving", "10.0.0.2:8080 ready serving", "10.0.0.3:8080 ready serving"}},
		// No node: not even the endpoint without a nodeName is local.
		{"", []string{"10.0.0.1:8080 ready serving", "10.0.0.2:8080 ready serving", "10.0.0.3:8080 ready serving"}},
	}
	for _, tt := range tests {
		t.Run("node "+tt.node, func(t *testing.T) {
			got := endpoints.Merge(parseAll(t, es), tt.node)
			if diff := cmp.Diff(map[string][]string{"http/TCP": tt.want}, view(got)); diff != "" {
				t.Errorf("Merge (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMergeCarriesEndpointFields(t *testing.T) {
	es := servicemaptest.Slice("ns", "web", "web-1", httpPort, []servicemaptest.Endpoint{{
		IP: "10.0.0.1", Node: "node-1", Zone: "zone-a",
		Ready: servicemaptest.Ptr(false), Serving: servicemaptest.Ptr(true), Terminating: servicemaptest.Ptr(true),
		ZoneHints: []string{"zone-c", "zone-a", "zone-c"}, NodeHints: []string{"node-2", "node-1", "node-2"},
	}})
	got := endpoints.Merge(parseAll(t, es), "node-1")
	want := []endpoints.PortEndpoints{{
		PortKey: endpoints.PortKey{Name: "http", Protocol: v1.ProtocolTCP},
		Endpoints: []endpoints.Endpoint{{
			Addr:     netip.MustParseAddrPort("10.0.0.1:8080"),
			NodeName: "node-1", Zone: "zone-a",
			ZoneHints: []string{"zone-a", "zone-c"}, NodeHints: []string{"node-1", "node-2"},
			Serving: true, Terminating: true, Local: true,
		}},
	}}
	if diff := cmp.Diff(want, got, netipEqual); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
	e := got[0].Endpoints[0]
	if !e.HasZoneHint("zone-c") || e.HasZoneHint("zone-b") || !e.HasNodeHint("node-2") || e.HasNodeHint("node-3") {
		t.Errorf("hint lookups disagree with hints %v / %v", e.ZoneHints, e.NodeHints)
	}
}

func TestMergeOrdering(t *testing.T) {
	udp := v1.ProtocolUDP
	ports := []discoveryv1.EndpointPort{
		servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP),
		servicemaptest.SlicePort("dns", 53, udp),
		servicemaptest.SlicePort("dns", 53, v1.ProtocolTCP),
		servicemaptest.SlicePort("", 9000, v1.ProtocolSCTP),
	}
	es := servicemaptest.Slice("ns", "web", "web-1", ports, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.0.0.10", ""),
		servicemaptest.Ready("10.0.0.2", ""),
		servicemaptest.Ready("9.255.255.255", ""),
	})
	got := endpoints.Merge(parseAll(t, es), "")
	var keys []string
	for _, pe := range got {
		keys = append(keys, pe.Name+"/"+string(pe.Protocol))
	}
	if diff := cmp.Diff([]string{"/SCTP", "dns/TCP", "dns/UDP", "http/TCP"}, keys); diff != "" {
		t.Errorf("port order (-want +got):\n%s", diff)
	}
	want := []string{"9.255.255.255:8080 ready serving", "10.0.0.2:8080 ready serving", "10.0.0.10:8080 ready serving"}
	if diff := cmp.Diff(want, view(got)["http/TCP"]); diff != "" {
		t.Errorf("endpoint order (-want +got):\n%s", diff)
	}

	v6 := servicemaptest.Slice("ns", "web", "web-v6", httpPort, []servicemaptest.Endpoint{
		servicemaptest.Ready("fd00::10", ""), servicemaptest.Ready("fd00::2", ""), servicemaptest.Ready("fd00::1:0", ""),
	})
	s, warnings := endpoints.ParseSlice(v6, v1.IPv6Protocol)
	if s == nil {
		t.Fatalf("IPv6 slice ignored: %v", warnings)
	}
	want = []string{"[fd00::2]:8080 ready serving", "[fd00::10]:8080 ready serving", "[fd00::1:0]:8080 ready serving"}
	if diff := cmp.Diff(want, view(endpoints.Merge([]*endpoints.Slice{s}, ""))["http/TCP"]); diff != "" {
		t.Errorf("IPv6 endpoint order (-want +got):\n%s", diff)
	}
}

// Ports of one name and protocol are one port key even when the slices give
// them different numbers (as during a rollout that changes targetPort).
func TestMergeSamePortNameDifferentNumbers(t *testing.T) {
	old := servicemaptest.Slice("ns", "web", "web-old", []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.0.0.1", "")})
	cur := servicemaptest.Slice("ns", "web", "web-new", []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 9090, v1.ProtocolTCP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.0.0.1", "")})
	got := mergeEveryOrder(t, parseAll(t, old, cur), "")
	want := map[string][]string{"http/TCP": {"10.0.0.1:8080 ready serving", "10.0.0.1:9090 ready serving"}}
	if diff := cmp.Diff(want, view(got)); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
}

func TestMergeDoesNotTouchInput(t *testing.T) {
	sl := parseAll(t,
		servicemaptest.Slice("ns", "web", "web-c", httpPort, []servicemaptest.Endpoint{servicemaptest.Ready("10.0.0.2", "node-1")}),
		servicemaptest.Slice("ns", "web", "web-a", httpPort, []servicemaptest.Endpoint{servicemaptest.Terminating("10.0.0.2", "node-1"), servicemaptest.Ready("10.0.0.1", "")}),
	)
	order := []*endpoints.Slice{sl[0], sl[1]}
	snapshots := make([]endpoints.Slice, len(sl))
	for i, s := range sl {
		snapshots[i] = *s
		snapshots[i].Endpoints = slices.Clone(s.Endpoints)
	}
	endpoints.Merge(sl, "node-1")
	if sl[0] != order[0] || sl[1] != order[1] {
		t.Errorf("Merge reordered its argument")
	}
	for i, s := range sl {
		if !s.Equal(&snapshots[i]) {
			t.Errorf("Merge modified slice %s", s.Name)
		}
	}
}
