package endpoints_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemaptest"
)

// netip values have unexported fields; compare them as values.
var netipEqual = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
}

var httpPort = []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)}

// rawSlice returns an IPv4 slice of service "web" in namespace "ns" whose
// fields are exactly as given, without the API server's defaults.
func rawSlice(name string, mutate ...func(*discoveryv1.EndpointSlice)) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, m := range mutate {
		m(es)
	}
	return es
}

func withPorts(ports ...discoveryv1.EndpointPort) func(*discoveryv1.EndpointSlice) {
	return func(es *discoveryv1.EndpointSlice) { es.Ports = ports }
}

func withEndpoints(eps ...discoveryv1.Endpoint) func(*discoveryv1.EndpointSlice) {
	return func(es *discoveryv1.EndpointSlice) { es.Endpoints = eps }
}

func at(addrs ...string) discoveryv1.Endpoint { return discoveryv1.Endpoint{Addresses: addrs} }

func reasons(ws []endpoints.Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Reason)
	}
	return out
}

func TestParseSliceIgnoresSlice(t *testing.T) {
	tests := []struct {
		name   string
		es     *discoveryv1.EndpointSlice
		family v1.IPFamily
		reason string
	}{
		{"no service-name label", rawSlice("web-1", func(es *discoveryv1.EndpointSlice) { es.Labels = nil }), v1.IPv4Protocol, endpoints.ReasonNoServiceName},
		{"empty service-name label", rawSlice("web-1", func(es *discoveryv1.EndpointSlice) {
			es.Labels = map[string]string{discoveryv1.LabelServiceName: ""}
		}), v1.IPv4Protocol, endpoints.ReasonNoServiceName},
		{"other labels only", rawSlice("web-1", func(es *discoveryv1.EndpointSlice) {
			es.Labels = map[string]string{"app": "web"}
		}), v1.IPv4Protocol, endpoints.ReasonNoServiceName},
		{"FQDN slice", rawSlice("web-1", func(es *discoveryv1.EndpointSlice) {
			es.AddressType = discoveryv1.AddressTypeFQDN
		}), v1.IPv4Protocol, endpoints.ReasonAddressType},
		{"empty address type", rawSlice("web-1", func(es *discoveryv1.EndpointSlice) {
			es.AddressType = ""
		}), v1.IPv4Protocol, endpoints.ReasonAddressType},
		{"IPv6 slice, IPv4 proxy", rawSlice("web-1", func(es *discoveryv1.EndpointSlice) {
			es.AddressType = discoveryv1.AddressTypeIPv6
		}), v1.IPv4Protocol, endpoints.ReasonOtherFamily},
		{"IPv4 slice, IPv6 proxy", rawSlice("web-1"), v1.IPv6Protocol, endpoints.ReasonOtherFamily},
		{"no name", rawSlice(""), v1.IPv4Protocol, endpoints.ReasonMissingMetadata},
		{"no namespace", rawSlice("web-1", func(es *discoveryv1.EndpointSlice) { es.Namespace = "" }), v1.IPv4Protocol, endpoints.ReasonMissingMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.es.Ports = httpPort
			tt.es.Endpoints = []discoveryv1.Endpoint{at("10.0.0.1")}
			s, warnings := endpoints.ParseSlice(tt.es, tt.family)
			if s != nil {
				t.Errorf("ParseSlice returned %+v, want nil", s)
			}
			if diff := cmp.Diff([]string{tt.reason}, reasons(warnings)); diff != "" {
				t.Errorf("warning reasons (-want +got):\n%s", diff)
			}
			for _, w := range warnings {
				if w.Object != "EndpointSlice "+tt.es.Namespace+"/"+tt.es.Name || w.Message == "" {
					t.Errorf("warning %+v does not name the slice or says nothing", w)
				}
			}
		})
	}
}

func TestParseSliceNil(t *testing.T) {
	s, warnings := endpoints.ParseSlice(nil, v1.IPv4Protocol)
	if s != nil || warnings != nil {
		t.Errorf("ParseSlice(nil) = %v, %v; want nil, nil", s, warnings)
	}
}

func TestParseSliceKeepsIdentity(t *testing.T) {
	es := servicemaptest.Slice("shop", "web", "web-x7k2", httpPort, []servicemaptest.Endpoint{servicemaptest.Ready("10.0.0.1", "node-1")})
	s, warnings := endpoints.ParseSlice(es, v1.IPv4Protocol)
	if len(warnings) != 0 {
		t.Fatalf("unexpected warnings %v", warnings)
	}
	got := [3]string{s.Namespace, s.Name, s.Service}
	if want := [3]string{"shop", "web-x7k2", "web"}; got != want {
		t.Errorf("namespace, name, service = %q, want %q", got, want)
	}
}

func TestParseSliceConditions(t *testing.T) {
	yes, no := servicemaptest.Ptr(true), servicemaptest.Ptr(false)
	tests := []struct {
		name                         string
		ready, serving, terminating  *bool
		wantReady, wantServ, wantTer bool
	}{
		{"all absent: ready and serving, not terminating", nil, nil, nil, true, true, false},
		{"all set true", yes, yes, yes, true, true, true},
		{"all set false", no, no, no, false, false, false},
		{"not ready, serving absent", no, nil, nil, false, true, false},
		{"ready absent, not serving", nil, no, nil, true, false, false},
		{"terminating and serving", no, yes, yes, false, true, true},
		{"terminating, serving absent", no, nil, yes, false, true, true},
		{"terminating and no longer serving", no, no, yes, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := at("10.0.0.1")
			e.Conditions = discoveryv1.EndpointConditions{Ready: tt.ready, Serving: tt.serving, Terminating: tt.terminating}
			s, warnings := endpoints.ParseSlice(rawSlice("web-1", withPorts(httpPort...), withEndpoints(e)), v1.IPv4Protocol)
			if len(warnings) != 0 || s == nil || len(s.Endpoints) != 1 {
				t.Fatalf("ParseSlice = %+v, %v; want one endpoint and no warning", s, warnings)
			}
			got := s.Endpoints[0]
			if got.Ready != tt.wantReady || got.Serving != tt.wantServ || got.Terminating != tt.wantTer {
				t.Errorf("ready, serving, terminating = %v, %v, %v; want %v, %v, %v",
					got.Ready, got.Serving, got.Terminating, tt.wantReady, tt.wantServ, tt.wantTer)
			}
		})
	}
}

func TestParseSlicePorts(t *testing.T) {
	tcp, udp, sctp := v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP
	port := func(name *string, number *int32, proto *v1.Protocol) discoveryv1.EndpointPort {
		return discoveryv1.EndpointPort{Name: name, Port: number, Protocol: proto}
	}
	name, num := servicemaptest.Ptr[string], servicemaptest.Ptr[int32]
	tests := []struct {
		name     string
		ports    []discoveryv1.EndpointPort
		want     []endpoints.Port
		warnings []string
	}{
		{
			name:  "name, number and protocol",
			ports: []discoveryv1.EndpointPort{port(name("http"), num(8080), &tcp)},
			want:  []endpoints.Port{{PortKey: endpoints.PortKey{Name: "http", Protocol: tcp}, Number: 8080}},
		},
		{
			// kube-proxy: EndpointSliceCache.endpointInfoByServicePort
			// ignores a port with a nil name.
			name:     "nil name skipped",
			ports:    []discoveryv1.EndpointPort{port(nil, num(8080), &tcp)},
			warnings: []string{endpoints.ReasonBadPort},
		},
		{
			name:  "empty name is the unnamed port",
			ports: []discoveryv1.EndpointPort{port(name(""), num(8080), &tcp)},
			want:  []endpoints.Port{{PortKey: endpoints.PortKey{Name: "", Protocol: tcp}, Number: 8080}},
		},
		{
			name:  "nil protocol is TCP",
			ports: []discoveryv1.EndpointPort{port(name("http"), num(8080), nil)},
			want:  []endpoints.Port{{PortKey: endpoints.PortKey{Name: "http", Protocol: tcp}, Number: 8080}},
		},
		{
			name:  "UDP and SCTP",
			ports: []discoveryv1.EndpointPort{port(name("dns"), num(53), &udp), port(name("sig"), num(2905), &sctp)},
			want: []endpoints.Port{
				{PortKey: endpoints.PortKey{Name: "dns", Protocol: udp}, Number: 53},
				{PortKey: endpoints.PortKey{Name: "sig", Protocol: sctp}, Number: 2905},
			},
		},
		{
			name:  "highest port number",
			ports: []discoveryv1.EndpointPort{port(name("hi"), num(65535), &tcp)},
			want:  []endpoints.Port{{PortKey: endpoints.PortKey{Name: "hi", Protocol: tcp}, Number: 65535}},
		},
		{
			// kube-proxy skips a nil port too; a nil port is meant to mean
			// "all ports" one day, which neither implements.
			name:     "nil port number skipped",
			ports:    []discoveryv1.EndpointPort{port(name("http"), nil, &tcp)},
			warnings: []string{endpoints.ReasonBadPort},
		},
		{
			name:     "port 0 skipped",
			ports:    []discoveryv1.EndpointPort{port(name("http"), num(0), &tcp)},
			warnings: []string{endpoints.ReasonBadPort},
		},
		{
			name:     "negative and too large port numbers skipped",
			ports:    []discoveryv1.EndpointPort{port(name("neg"), num(-1), &tcp), port(name("big"), num(65536), &tcp)},
			warnings: []string{endpoints.ReasonBadPort, endpoints.ReasonBadPort},
		},
		{
			name:     "unknown protocol skipped",
			ports:    []discoveryv1.EndpointPort{port(name("ping"), num(7), servicemaptest.Ptr[v1.Protocol]("ICMP"))},
			warnings: []string{endpoints.ReasonBadProtocol},
		},
		{
			name:     "protocol names are case-sensitive",
			ports:    []discoveryv1.EndpointPort{port(name("web"), num(80), servicemaptest.Ptr[v1.Protocol]("tcp"))},
			warnings: []string{endpoints.ReasonBadProtocol},
		},
		{
			name: "a bad port does not hide the good ones",
			ports: []discoveryv1.EndpointPort{
				port(name("a"), nil, &tcp),
				port(name("b"), num(81), &udp),
				port(name("c"), num(82), servicemaptest.Ptr[v1.Protocol]("QUIC")),
			},
			want:     []endpoints.Port{{PortKey: endpoints.PortKey{Name: "b", Protocol: udp}, Number: 81}},
			warnings: []string{endpoints.ReasonBadPort, endpoints.ReasonBadProtocol},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, warnings := endpoints.ParseSlice(rawSlice("web-1", withPorts(tt.ports...), withEndpoints(at("10.0.0.1"))), v1.IPv4Protocol)
			if s == nil {
				t.Fatalf("slice ignored: %v", warnings)
			}
			if diff := cmp.Diff(tt.want, s.Ports); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, reasons(warnings)); diff != "" {
				t.Errorf("warning reasons (-want +got):\n%s", diff)
			}
			if len(s.Endpoints) != 1 {
				t.Errorf("got %d endpoints, want 1: ports do not affect endpoints", len(s.Endpoints))
			}
		})
	}
}

func TestParseSliceAddresses(t *testing.T) {
	tests := []struct {
		name     string
		family   v1.IPFamily
		eps      []discoveryv1.Endpoint
		want     []string
		warnings []string
	}{
		{"IPv4", v1.IPv4Protocol, []discoveryv1.Endpoint{at("10.0.0.1")}, []string{"10.0.0.1"}, nil},
		{"only the first address is used", v1.IPv4Protocol, []discoveryv1.Endpoint{at("10.0.0.1", "10.0.0.2")}, []string{"10.0.0.1"}, nil},
		{"a bad first address is not replaced by the second", v1.IPv4Protocol, []discoveryv1.Endpoint{at("bogus", "10.0.0.2")}, nil, []string{endpoints.ReasonBadAddress}},
		{"leading zeros are decimal", v1.IPv4Protocol, []discoveryv1.Endpoint{at("010.001.002.003")}, []string{"10.1.2.3"}, nil},
		{"IPv4-mapped IPv6 in an IPv4 slice", v1.IPv4Protocol, []discoveryv1.Endpoint{at("::ffff:10.1.2.3")}, []string{"10.1.2.3"}, nil},
		{"IPv6", v1.IPv6Protocol, []discoveryv1.Endpoint{at("fd00::1"), at("FD00:0:0::2")}, []string{"fd00::1", "fd00::2"}, nil},
		{"IPv6 with a zone", v1.IPv6Protocol, []discoveryv1.Endpoint{at("fe80::1%eth0")}, nil, []string{endpoints.ReasonBadAddress}},
		{"IPv4 with a zone", v1.IPv4Protocol, []discoveryv1.Endpoint{at("10.0.0.1%eth0")}, nil, []string{endpoints.ReasonBadAddress}},
		{"no address", v1.IPv4Protocol, []discoveryv1.Endpoint{at()}, nil, []string{endpoints.ReasonNoAddress}},
		{"hostname", v1.IPv4Protocol, []discoveryv1.Endpoint{at("web.example.com")}, nil, []string{endpoints.ReasonBadAddress}},
		{"IPv6 endpoint in an IPv4 slice", v1.IPv4Protocol, []discoveryv1.Endpoint{at("10.0.0.1"), at("fd00::1"), at("10.0.0.2")}, []string{"10.0.0.1", "10.0.0.2"}, []string{endpoints.ReasonOtherFamily}},
		{"IPv4 endpoint in an IPv6 slice", v1.IPv6Protocol, []discoveryv1.Endpoint{at("10.0.0.1"), at("fd00::1")}, []string{"fd00::1"}, []string{endpoints.ReasonOtherFamily}},
		{"IPv4-mapped endpoint in an IPv6 slice", v1.IPv6Protocol, []discoveryv1.Endpoint{at("::ffff:10.0.0.1")}, nil, []string{endpoints.ReasonOtherFamily}},
		{"slice order is kept", v1.IPv4Protocol, []discoveryv1.Endpoint{at("10.0.0.9"), at("10.0.0.1")}, []string{"10.0.0.9", "10.0.0.1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := rawSlice("web-1", withPorts(httpPort...), withEndpoints(tt.eps...), func(es *discoveryv1.EndpointSlice) {
				es.AddressType = discoveryv1.AddressType(tt.family)
			})
			s, warnings := endpoints.ParseSlice(es, tt.family)
			if s == nil {
				t.Fatalf("slice ignored: %v", warnings)
			}
			var got []string
			for _, e := range s.Endpoints {
				got = append(got, e.Addr.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, reasons(warnings)); diff != "" {
				t.Errorf("warning reasons (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSliceEndpointFields(t *testing.T) {
	es := servicemaptest.Slice("ns", "web", "web-1", httpPort, []servicemaptest.Endpoint{
		{IP: "10.0.0.1", Node: "node-1", Zone: "zone-a",
			ZoneHints: []string{"zone-b", "zone-a", "zone-b"}, NodeHints: []string{"node-3", "node-1", "node-1"}},
		{IP: "10.0.0.2"},
	})
	// Hints that are present but empty read as no hints.
	es.Endpoints[1].Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{}}
	s, warnings := endpoints.ParseSlice(es, v1.IPv4Protocol)
	if len(warnings) != 0 {
		t.Fatalf("unexpected warnings %v", warnings)
	}
	want := []endpoints.SliceEndpoint{
		{
			Addr: netip.MustParseAddr("10.0.0.1"), NodeName: "node-1", Zone: "zone-a",
			ZoneHints: []string{"zone-a", "zone-b"}, NodeHints: []string{"node-1", "node-3"},
			Ready: true, Serving: true,
		},
		{Addr: netip.MustParseAddr("10.0.0.2"), Ready: true, Serving: true},
	}
	if diff := cmp.Diff(want, s.Endpoints, netipEqual); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
}

// ParseSlice reads its input and keeps no reference to it: the informer
// cache owns the object.
func TestParseSliceDoesNotTouchInput(t *testing.T) {
	es := servicemaptest.Slice("ns", "web", "web-1", httpPort, []servicemaptest.Endpoint{
		{IP: "10.0.0.2", Node: "node-1", ZoneHints: []string{"zone-b", "zone-a"}, NodeHints: []string{"node-2", "node-1"}},
		servicemaptest.Ready("10.0.0.1", "node-2"),
	})
	before := es.DeepCopy()
	s, _ := endpoints.ParseSlice(es, v1.IPv4Protocol)
	if diff := cmp.Diff(before, es); diff != "" {
		t.Fatalf("ParseSlice modified the EndpointSlice (-before +after):\n%s", diff)
	}
	parsed := []endpoints.SliceEndpoint{s.Endpoints[0], s.Endpoints[1]}
	es.Endpoints[0].Hints.ForZones[0].Name = "changed"
	es.Endpoints[0].NodeName = servicemaptest.Ptr("changed")
	*es.Ports[0].Name = "changed"
	if diff := cmp.Diff(parsed, s.Endpoints, netipEqual); diff != "" {
		t.Errorf("changing the EndpointSlice changed the parsed slice:\n%s", diff)
	}
	if s.Ports[0].Name != "http" {
		t.Errorf("port name = %q after changing the EndpointSlice, want http", s.Ports[0].Name)
	}
}

func TestSliceEqual(t *testing.T) {
	parse := func(es *discoveryv1.EndpointSlice) *endpoints.Slice {
		s, _ := endpoints.ParseSlice(es, v1.IPv4Protocol)
		return s
	}
	base := func(mutate ...func(*discoveryv1.EndpointSlice)) *endpoints.Slice {
		return parse(servicemaptest.Slice("ns", "web", "web-1", httpPort, []servicemaptest.Endpoint{
			{IP: "10.0.0.1", Node: "node-1", Zone: "zone-a", Ready: servicemaptest.Ptr(true), ZoneHints: []string{"zone-a"}},
		}, mutate...))
	}
	tests := []struct {
		name string
		a, b *endpoints.Slice
		want bool
	}{
		{"both nil", nil, nil, true},
		{"one nil", base(), nil, false},
		{"same content", base(), base(), true},
		{"hints given in another order and repeated", base(), base(func(es *discoveryv1.EndpointSlice) {
			es.Endpoints[0].Hints.ForZones = []discoveryv1.ForZone{{Name: "zone-a"}, {Name: "zone-a"}}
		}), true},
		{"a second address, which is not used", base(), base(func(es *discoveryv1.EndpointSlice) {
			es.Endpoints[0].Addresses = append(es.Endpoints[0].Addresses, "10.0.0.9")
		}), true},
		{"other address", base(), base(func(es *discoveryv1.EndpointSlice) { es.Endpoints[0].Addresses[0] = "10.0.0.2" }), false},
		{"other condition", base(), base(func(es *discoveryv1.EndpointSlice) { es.Endpoints[0].Conditions.Ready = servicemaptest.Ptr(false) }), false},
		{"other zone hint", base(), base(func(es *discoveryv1.EndpointSlice) { es.Endpoints[0].Hints.ForZones[0].Name = "zone-b" }), false},
		{"other port number", base(), base(func(es *discoveryv1.EndpointSlice) { es.Ports[0].Port = servicemaptest.Ptr[int32](9090) }), false},
		{"other name", base(), base(func(es *discoveryv1.EndpointSlice) { es.Name = "web-2" }), false},
		{"other node", base(), base(func(es *discoveryv1.EndpointSlice) { es.Endpoints[0].NodeName = servicemaptest.Ptr("node-2") }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Equal(tt.b); got != tt.want {
				t.Errorf("a.Equal(b) = %v, want %v", got, tt.want)
			}
			if got := tt.b.Equal(tt.a); got != tt.want {
				t.Errorf("b.Equal(a) = %v, want %v", got, tt.want)
			}
		})
	}
}
