package endpoints_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemaptest"
)

// TestKubeProxyFidelity feeds EndpointSlices to ParseSlice and Merge and
// expects the endpoints kube-proxy v1.37 would build from them: each row
// names the kube-proxy function (pkg/proxy) whose answer it restates. Rows
// marked "lbkit:" are deliberate differences, where kube-proxy would build
// an unusable endpoint from input the API server refuses.
func TestKubeProxyFidelity(t *testing.T) {
	b := servicemaptest.Ptr[bool]
	cond := func(ip string, ready, serving, terminating *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}}
	}
	onNode := func(e discoveryv1.Endpoint, node string) discoveryv1.Endpoint { e.NodeName = &node; return e }
	readyEp := func(ip string) discoveryv1.Endpoint { return cond(ip, b(true), b(true), b(false)) }
	notReady := func(ip string) discoveryv1.Endpoint { return cond(ip, b(false), b(false), b(false)) }
	termServing := func(ip string) discoveryv1.Endpoint { return cond(ip, b(false), b(true), b(true)) }
	stopped := func(ip string) discoveryv1.Endpoint { return cond(ip, b(false), b(false), b(true)) }
	slice := func(name string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return rawSlice(name, withPorts(servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)), withEndpoints(eps...))
	}
	tcp, udp := v1.ProtocolTCP, v1.ProtocolUDP
	name, num := servicemaptest.Ptr[string], servicemaptest.Ptr[int32]

	tests := []struct {
		name    string
		slices  []*discoveryv1.EndpointSlice
		node    string
		want    map[string][]string
		reasons []string
	}{
		// EndpointSliceCache.addEndpoints reads a slice's endpoints in
		// order; a repeated address:port is replaced by a later copy unless
		// that copy is terminating.
		{
			name:    "addEndpoints: a later non-terminating copy replaces a ready one, even not ready",
			slices:  []*discoveryv1.EndpointSlice{slice("web-1", readyEp("10.0.0.1"), notReady("10.0.0.1"))},
			want:    map[string][]string{"http/TCP": {"10.0.0.1:8080"}},
			reasons: []string{endpoints.ReasonRepeatedAddress},
		},
		{
			name:    "addEndpoints: a later ready copy replaces a not-ready one",
			slices:  []*discoveryv1.EndpointSlice{slice("web-1", notReady("10.0.0.1"), readyEp("10.0.0.1"))},
			want:    map[string][]string{"http/TCP": {"10.0.0.1:8080 ready serving"}},
			reasons: []string{endpoints.ReasonRepeatedAddress},
		},
		{
			name:    "addEndpoints: a later terminating copy never replaces",
			slices:  []*discoveryv1.EndpointSlice{slice("web-1", readyEp("10.0.0.1"), termServing("10.0.0.1"))},
			want:    map[string][]string{"http/TCP": {"10.0.0.1:8080 ready serving"}},
			reasons: []string{endpoints.ReasonRepeatedAddress},
		},
		{
			name:    "addEndpoints: of two terminating copies the first stays, even not serving",
			slices:  []*discoveryv1.EndpointSlice{slice("web-1", stopped("10.0.0.1"), termServing("10.0.0.1"))},
			want:    map[string][]string{"http/TCP": {"10.0.0.1:8080 terminating"}},
			reasons: []string{endpoints.ReasonRepeatedAddress},
		},
		{
			name:    "addEndpoints: a not-terminating copy replaces a terminating one",
			slices:  []*discoveryv1.EndpointSlice{slice("web-1", termServing("10.0.0.1"), notReady("10.0.0.1"))},
			want:    map[string][]string{"http/TCP": {"10.0.0.1:8080"}},
			reasons: []string{endpoints.ReasonRepeatedAddress},
		},
		{
			name: "addEndpoints: a repeat on another node replaces locality too",
			slices: []*discoveryv1.EndpointSlice{slice("web-1",
				onNode(readyEp("10.0.0.1"), "node-1"), onNode(readyEp("10.0.0.1"), "node-2"))},
			node:    "node-1",
			want:    map[string][]string{"http/TCP": {"10.0.0.1:8080 ready serving"}},
			reasons: []string{endpoints.ReasonRepeatedAddress},
		},
		{
			// Across slices kube-proxy's answer depends on map order; the
			// not-terminating copy wins in every order.
			name: "addEndpoints across slices: the not-terminating copy wins",
			slices: []*discoveryv1.EndpointSlice{
				slice("web-1", termServing("10.0.0.1")), slice("web-2", notReady("10.0.0.1")),
			},
			want: map[string][]string{"http/TCP": {"10.0.0.1:8080"}},
		},
		{
			name: "addEndpoints: one address on two port numbers is two endpoints",
			slices: []*discoveryv1.EndpointSlice{
				slice("web-1", readyEp("10.0.0.1")),
				rawSlice("web-2", withPorts(servicemaptest.SlicePort("http", 9090, v1.ProtocolTCP)), withEndpoints(readyEp("10.0.0.1"))),
			},
			want: map[string][]string{"http/TCP": {"10.0.0.1:8080 ready serving", "10.0.0.1:9090 ready serving"}},
		},
		// addEndpoints: absent conditions.
		{
			name:   "addEndpoints: nil ready and serving mean true, nil terminating false",
			slices: []*discoveryv1.EndpointSlice{slice("web-1", cond("10.0.0.1", nil, nil, nil))},
			want:   map[string][]string{"http/TCP": {"10.0.0.1:8080 ready serving"}},
		},
		{
			name:   "addEndpoints: terminating with nil ready is read as ready",
			slices: []*discoveryv1.EndpointSlice{slice("web-1", cond("10.0.0.1", nil, nil, b(true)))},
			want:   map[string][]string{"http/TCP": {"10.0.0.1:8080 ready serving terminating"}},
		},
		{
			name:   "addEndpoints: ready but not serving stays ready",
			slices: []*discoveryv1.EndpointSlice{slice("web-1", cond("10.0.0.1", b(true), b(false), nil))},
			want:   map[string][]string{"http/TCP": {"10.0.0.1:8080 ready"}},
		},
		{
			name: "addEndpoints: only the first address is used",
			slices: []*discoveryv1.EndpointSlice{slice("web-1",
				discoveryv1.Endpoint{Addresses: []string{"10.0.0.1", "10.0.0.2"}})},
			want: map[string][]string{"http/TCP": {"10.0.0.1:8080 ready serving"}},
		},
		{
			name:    "addEndpoints: an endpoint without addresses is skipped",
			slices:  []*discoveryv1.EndpointSlice{slice("web-1", discoveryv1.Endpoint{}, readyEp("10.0.0.2"))},
			want:    map[string][]string{"http/TCP": {"10.0.0.2:8080 ready serving"}},
			reasons: []string{endpoints.ReasonNoAddress},
		},
		{
			name:   "addEndpoints: leading zeros are decimal (ParseIPSloppy)",
			slices: []*discoveryv1.EndpointSlice{slice("web-1", readyEp("010.000.000.011"))},
			want:   map[string][]string{"http/TCP": {"10.0.0.11:8080 ready serving"}},
		},
		{
			name:   "addEndpoints: an IPv4-mapped address is its IPv4 address (ParseIPSloppy(...).String())",
			slices: []*discoveryv1.EndpointSlice{slice("web-1", readyEp("::ffff:10.0.0.7"))},
			want:   map[string][]string{"http/TCP": {"10.0.0.7:8080 ready serving"}},
		},
		// isLocal: only a named node has local endpoints.
		{
			name:   "isLocal: nodeName equal to this node",
			slices: []*discoveryv1.EndpointSlice{slice("web-1", onNode(readyEp("10.0.0.1"), "node-1"), onNode(readyEp("10.0.0.2"), "node-2"), readyEp("10.0.0.3"))},
			node:   "node-1",
			want:   map[string][]string{"http/TCP": {"10.0.0.1:8080 ready serving local", "10.0.0.2:8080 ready serving", "10.0.0.3:8080 ready serving"}},
		},
		{
			name:   "isLocal: no node name configured, nothing is local",
			slices: []*discoveryv1.EndpointSlice{slice("web-1", onNode(readyEp("10.0.0.1"), ""))},
			node:   "",
			want:   map[string][]string{"http/TCP": {"10.0.0.1:8080 ready serving"}},
		},
		// endpointInfoByServicePort: ports.
		{
			name: "endpointInfoByServicePort: nil port name skipped, empty name kept",
			slices: []*discoveryv1.EndpointSlice{rawSlice("web-1", withPorts(
				discoveryv1.EndpointPort{Port: num(80), Protocol: &tcp},
				discoveryv1.EndpointPort{Name: name(""), Port: num(81), Protocol: &tcp},
			), withEndpoints(readyEp("10.0.0.1")))},
			want:    map[string][]string{"/TCP": {"10.0.0.1:81 ready serving"}},
			reasons: []string{endpoints.ReasonBadPort},
		},
		{
			name: "endpointInfoByServicePort: one name, two protocols, two ports",
			slices: []*discoveryv1.EndpointSlice{rawSlice("web-1", withPorts(
				discoveryv1.EndpointPort{Name: name("dns"), Port: num(53), Protocol: &tcp},
				discoveryv1.EndpointPort{Name: name("dns"), Port: num(5353), Protocol: &udp},
			), withEndpoints(readyEp("10.0.0.1")))},
			want: map[string][]string{"dns/TCP": {"10.0.0.1:53 ready serving"}, "dns/UDP": {"10.0.0.1:5353 ready serving"}},
		},
		{
			name: "endpointInfoByServicePort: port 0 skipped",
			slices: []*discoveryv1.EndpointSlice{rawSlice("web-1", withPorts(
				discoveryv1.EndpointPort{Name: name("http"), Port: num(0), Protocol: &tcp},
			), withEndpoints(readyEp("10.0.0.1")))},
			want:    nil,
			reasons: []string{endpoints.ReasonBadPort},
		},
		// EndpointsChangeTracker.EndpointSliceUpdate: whole slices ignored.
		{
			name:    "EndpointSliceUpdate: FQDN slice ignored",
			slices:  []*discoveryv1.EndpointSlice{rawSlice("web-1", withPorts(httpPort...), withEndpoints(at("db.example")), func(es *discoveryv1.EndpointSlice) { es.AddressType = discoveryv1.AddressTypeFQDN })},
			reasons: []string{endpoints.ReasonAddressType},
		},
		{
			name:    "EndpointSliceUpdate: IPv6 slice ignored by an IPv4 proxy",
			slices:  []*discoveryv1.EndpointSlice{rawSlice("web-1", withPorts(httpPort...), withEndpoints(at("fd00::1")), func(es *discoveryv1.EndpointSlice) { es.AddressType = discoveryv1.AddressTypeIPv6 })},
			reasons: []string{endpoints.ReasonOtherFamily},
		},
		{
			name:    "endpointSliceCacheKeys: no service-name label, slice ignored",
			slices:  []*discoveryv1.EndpointSlice{rawSlice("web-1", withPorts(httpPort...), withEndpoints(readyEp("10.0.0.1")), func(es *discoveryv1.EndpointSlice) { es.Labels = nil })},
			reasons: []string{endpoints.ReasonNoServiceName},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var parsed []*endpoints.Slice
			var got []string
			for _, es := range tt.slices {
				s, ws := endpoints.ParseSlice(es, v1.IPv4Protocol)
				got = append(got, reasons(ws)...)
				if s != nil {
					parsed = append(parsed, s)
				}
			}
			if diff := cmp.Diff(tt.reasons, got); diff != "" {
				t.Errorf("warning reasons (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, view(mergeEveryOrder(t, parsed, tt.node))); diff != "" {
				t.Errorf("Merge (-want +got):\n%s", diff)
			}
		})
	}
}

// An IPv6 proxy: a zoned address is skipped (kube-proxy would keep an
// unusable "<nil>" endpoint), an IPv4 address in an IPv6 slice too
// (kube-proxy does not look at each address's family).
func TestKubeProxyFidelityIPv6(t *testing.T) {
	es := rawSlice("web-1", withPorts(httpPort...), withEndpoints(at("fe80::1%eth0"), at("10.0.0.1"), at("fd00::2")),
		func(es *discoveryv1.EndpointSlice) { es.AddressType = discoveryv1.AddressTypeIPv6 })
	s, ws := endpoints.ParseSlice(es, v1.IPv6Protocol)
	if diff := cmp.Diff([]string{endpoints.ReasonBadAddress, endpoints.ReasonOtherFamily}, reasons(ws)); diff != "" {
		t.Errorf("warning reasons (-want +got):\n%s", diff)
	}
	want := map[string][]string{"http/TCP": {"[fd00::2]:8080 ready serving"}}
	if diff := cmp.Diff(want, view(endpoints.Merge([]*endpoints.Slice{s}, ""))); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
}

// Hints: forZones and forNodes names are kept as sets; hints present but
// empty are no hints (EndpointSliceCache.addEndpoints).
func TestKubeProxyFidelityHints(t *testing.T) {
	es := rawSlice("web-1", withPorts(httpPort...), withEndpoints(
		discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, Hints: &discoveryv1.EndpointHints{
			ForZones: []discoveryv1.ForZone{{Name: "b"}, {Name: "a"}, {Name: "b"}},
			ForNodes: []discoveryv1.ForNode{{Name: "n2"}, {Name: "n1"}},
		}},
		discoveryv1.Endpoint{Addresses: []string{"10.0.0.2"}, Hints: &discoveryv1.EndpointHints{}},
	))
	s, ws := endpoints.ParseSlice(es, v1.IPv4Protocol)
	if len(ws) != 0 {
		t.Fatalf("warnings: %v", ws)
	}
	got := endpoints.Merge([]*endpoints.Slice{s}, "")[0].Endpoints
	type hints struct{ Zones, Nodes []string }
	want := []hints{{[]string{"a", "b"}, []string{"n1", "n2"}}, {nil, nil}}
	have := []hints{{got[0].ZoneHints, got[0].NodeHints}, {got[1].ZoneHints, got[1].NodeHints}}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("hints (-want +got):\n%s", diff)
	}
}
