package endpoints_test

import (
	"cmp"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemaptest"
)

func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{
		"10.1.2.3", "010.001.002.003", "255.255.255.255", "256.1.1.1", "1.2.3", "::1", "fd00::1",
		"::ffff:10.1.2.3", "::ffff:010.1.2.3", "fe80::1%eth0", "10.1.2.3%x", "0x1.2.3.4", "1.2.3.4/8", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := endpoints.ParseAddr(s)
		if !ok {
			if a != (netip.Addr{}) {
				t.Fatalf("ParseAddr(%q) rejected the input but returned %v", s, a)
			}
			if std, err := netip.ParseAddr(s); err == nil && std.Zone() == "" {
				t.Fatalf("ParseAddr(%q) rejected an address that netip accepts as %v", s, std)
			}
			return
		}
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("ParseAddr(%q) = %v: want a valid address without zone, IPv4 unmapped", s, a)
		}
		again, err := netip.ParseAddr(a.String())
		if err != nil || again != a {
			t.Fatalf("ParseAddr(%q) = %v, which netip re-parses as %v, %v", s, a, again, err)
		}
		if again, ok := endpoints.ParseAddr(a.String()); !ok || again != a {
			t.Fatalf("ParseAddr(%q) = %v, which ParseAddr re-parses as %v, %v", s, a, again, ok)
		}
		if std, err := netip.ParseAddr(s); err == nil && std.Unmap() != a {
			t.Fatalf("ParseAddr(%q) = %v, netip reads %v", s, a, std)
		}
	})
}

func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"10.0.0.1/8", "010.0.0.1/08", "fd00::1/64", "::/0", "10.0.0.1/33", "10.0.0.1", "/8", "fe80::1%eth0/64"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := endpoints.ParsePrefix(s)
		if !ok {
			if p != (netip.Prefix{}) {
				t.Fatalf("ParsePrefix(%q) rejected the input but returned %v", s, p)
			}
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			t.Fatalf("ParsePrefix(%q) = %v: want a valid, masked prefix without zone", s, p)
		}
		if again, err := netip.ParsePrefix(p.String()); err != nil || again != p {
			t.Fatalf("ParsePrefix(%q) = %v, which netip re-parses as %v, %v", s, p, again, err)
		}
		addr, _, _ := strings.Cut(s, "/")
		if a, ok := endpoints.ParseAddr(addr); !ok || !p.Contains(a) {
			t.Fatalf("ParsePrefix(%q) = %v, which does not contain the address %q", s, p, addr)
		}
	})
}

// fuzzBytes hands out the fuzzer's bytes as small choices; past the end
// every choice is 0.
type fuzzBytes []byte

func (b *fuzzBytes) next() byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

// pick returns a choice in [0, n).
func (b *fuzzBytes) pick(n int) int { return int(b.next()) % n }

func (b *fuzzBytes) optBool() *bool {
	switch b.pick(3) {
	case 0:
		return nil
	case 1:
		return servicemaptest.Ptr(true)
	}
	return servicemaptest.Ptr(false)
}

func (b *fuzzBytes) optString(values ...string) *string {
	i := b.pick(len(values) + 1)
	if i == len(values) {
		return nil
	}
	return servicemaptest.Ptr(values[i])
}

// address returns text that is often an IP address, mostly from a small
// range so that slices share addresses.
func (b *fuzzBytes) address() string {
	n := b.pick(6)
	switch b.pick(9) {
	case 0, 1, 2:
		return fmt.Sprintf("10.0.0.%d", n)
	case 3:
		return fmt.Sprintf("010.000.000.%03d", n)
	case 4:
		return fmt.Sprintf("fd00::%x", n)
	case 5:
		return fmt.Sprintf("::ffff:10.0.0.%d", n)
	case 6:
		return fmt.Sprintf("fe80::%d%%eth0", n)
	case 7:
		return fmt.Sprintf("%d.%d.%d.%d", b.next(), b.next(), b.next(), b.next())
	}
	raw := make([]byte, b.pick(8))
	for i := range raw {
		raw[i] = b.next()
	}
	return string(raw)
}

func (b *fuzzBytes) port() discoveryv1.EndpointPort {
	p := discoveryv1.EndpointPort{Name: b.optString("", "http", "dns")}
	switch b.pick(5) {
	case 0:
	case 1:
		p.Port = servicemaptest.Ptr[int32](0)
	case 2, 3:
		p.Port = servicemaptest.Ptr([]int32{53, 80, 8080}[b.pick(3)])
	default:
		p.Port = servicemaptest.Ptr(int32(int16(uint16(b.next())<<8 | uint16(b.next()))))
	}
	switch b.pick(6) {
	case 0:
	case 1, 2:
		p.Protocol = servicemaptest.Ptr(v1.ProtocolTCP)
	case 3:
		p.Protocol = servicemaptest.Ptr(v1.ProtocolUDP)
	case 4:
		p.Protocol = servicemaptest.Ptr(v1.ProtocolSCTP)
	default:
		p.Protocol = servicemaptest.Ptr(v1.Protocol("ICMP"))
	}
	return p
}

func (b *fuzzBytes) endpoint() discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{
		Conditions: discoveryv1.EndpointConditions{Ready: b.optBool(), Serving: b.optBool(), Terminating: b.optBool()},
		NodeName:   b.optString("", "node-a", "node-b"),
		Zone:       b.optString("zone-a", "zone-b"),
	}
	for range b.pick(3) {
		e.Addresses = append(e.Addresses, b.address())
	}
	if b.pick(2) == 1 {
		e.Hints = &discoveryv1.EndpointHints{}
		for range b.pick(4) {
			e.Hints.ForZones = append(e.Hints.ForZones, discoveryv1.ForZone{Name: []string{"zone-b", "zone-a", ""}[b.pick(3)]})
		}
		for range b.pick(4) {
			e.Hints.ForNodes = append(e.Hints.ForNodes, discoveryv1.ForNode{Name: []string{"node-b", "node-a"}[b.pick(2)]})
		}
	}
	return e
}

// endpointSlices builds one to three EndpointSlices of service "web" with
// distinct names, as the API server would hold them for one service.
func (b *fuzzBytes) endpointSlices() []*discoveryv1.EndpointSlice {
	names := []string{"web-a", "web-b", "web-c"}
	var out []*discoveryv1.EndpointSlice
	for i := range 1 + b.pick(3) {
		es := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: "ns", Name: names[(i+b.pick(3))%3],
				Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
			},
			AddressType: []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN}[b.pick(4)],
		}
		if slices.ContainsFunc(out, func(o *discoveryv1.EndpointSlice) bool { return o.Name == es.Name }) {
			continue
		}
		for range b.pick(4) {
			es.Ports = append(es.Ports, b.port())
		}
		for range b.pick(8) {
			es.Endpoints = append(es.Endpoints, b.endpoint())
		}
		out = append(out, es)
	}
	return out
}

func FuzzParseSlice(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 1, 2, 2, 1, 1, 3, 1, 1, 0, 0, 1, 1, 2, 0, 1, 2, 1, 1, 2, 0, 0, 3})
	f.Add([]byte("\x02\x00\x00\x02\x01\x02\x02\x01\x04\x00\x01\x02\x00\x01\x03\x02\x00\x01\x02\x02\x01\x01\x00\x02\x01"))
	f.Add([]byte("the quick brown fox jumps over the lazy dog, twice: the quick brown fox jumps over the lazy dog"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := fuzzBytes(data)
		ess := b.endpointSlices()
		for _, family := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
			var parsed []*endpoints.Slice
			for _, es := range ess {
				before := es.DeepCopy()
				s, warnings := endpoints.ParseSlice(es, family)
				if !reflect.DeepEqual(before, es) {
					t.Fatalf("ParseSlice modified its input")
				}
				if s == nil {
					if len(warnings) == 0 {
						t.Fatalf("slice %s ignored without a warning", es.Name)
					}
					continue
				}
				checkParsed(t, es, s, warnings, family)
				parsed = append(parsed, s)
			}
			for _, node := range []string{"node-a", ""} {
				got := endpoints.Merge(parsed, node)
				checkMerged(t, parsed, got, node, family)
				for _, order := range [][]*endpoints.Slice{reversed(parsed), rotate(parsed)} {
					if other := endpoints.Merge(order, node); !equalResults(got, other) {
						t.Fatalf("Merge depends on slice order:\n%v\nversus\n%v", view(got), view(other))
					}
				}
			}
		}
	})
}

// checkParsed checks a parsed slice against its source: every skipped port
// or endpoint has a warning, and what is kept is usable.
func checkParsed(t *testing.T, es *discoveryv1.EndpointSlice, s *endpoints.Slice, warnings []endpoints.Warning, family v1.IPFamily) {
	t.Helper()
	if skipped := len(es.Ports) - len(s.Ports) + len(es.Endpoints) - len(s.Endpoints); skipped != len(warnings) {
		t.Fatalf("%d ports and endpoints skipped, %d warnings: %v", skipped, len(warnings), warnings)
	}
	for _, p := range s.Ports {
		if p.Number == 0 || (p.Protocol != v1.ProtocolTCP && p.Protocol != v1.ProtocolUDP && p.Protocol != v1.ProtocolSCTP) {
			t.Fatalf("unusable port kept: %+v", p)
		}
	}
	for _, e := range s.Endpoints {
		if !e.Addr.IsValid() || e.Addr.Is6() != (family == v1.IPv6Protocol) || e.Addr.Zone() != "" || e.Addr.Is4In6() {
			t.Fatalf("address %v kept in a %s slice", e.Addr, family)
		}
		for _, hints := range [][]string{e.ZoneHints, e.NodeHints} {
			if hints != nil && (len(hints) == 0 || !slices.IsSorted(hints) || len(slices.Compact(slices.Clone(hints))) != len(hints)) {
				t.Fatalf("hints %q not sorted, unique and nil when absent", hints)
			}
		}
	}
}

// checkMerged checks Merge's contract: ports sorted by name and protocol,
// endpoints sorted with one per address:port, every address:port of every
// slice present, the best copy of each kept, Local set from node.
func checkMerged(t *testing.T, parsed []*endpoints.Slice, got []endpoints.PortEndpoints, node string, family v1.IPFamily) {
	t.Helper()
	type key struct {
		port endpoints.PortKey
		addr netip.AddrPort
	}
	type best struct{ ready, serving bool }
	want := map[key]best{}
	for _, s := range parsed {
		for _, p := range s.Ports {
			for _, e := range s.Endpoints {
				k := key{p.PortKey, netip.AddrPortFrom(e.Addr, p.Number)}
				b := want[k]
				want[k] = best{b.ready || e.Ready, b.serving || e.Serving}
			}
		}
	}
	portOrder := func(a, b endpoints.PortEndpoints) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Protocol, b.Protocol))
	}
	seen := 0
	for i, pe := range got {
		if i > 0 && portOrder(got[i-1], pe) >= 0 {
			t.Fatalf("ports not sorted and unique: %v before %v", got[i-1].PortKey, pe.PortKey)
		}
		for j, e := range pe.Endpoints {
			if j > 0 && pe.Endpoints[j-1].Addr.Compare(e.Addr) >= 0 {
				t.Fatalf("port %v: endpoints not sorted and unique: %v before %v", pe.PortKey, pe.Endpoints[j-1], e)
			}
			b, ok := want[key{pe.PortKey, e.Addr}]
			if !ok {
				t.Fatalf("port %v: endpoint %v is in no slice", pe.PortKey, e)
			}
			seen++
			if e.Ready != b.ready || (!b.ready && e.Serving != b.serving) {
				t.Fatalf("port %v: kept %s, a better copy exists (ready %t, serving %t)", pe.PortKey, describe(e), b.ready, b.serving)
			}
			if e.Local != (node != "" && e.NodeName == node) {
				t.Fatalf("endpoint %s on node %q: Local = %t for node %q", e, e.NodeName, e.Local, node)
			}
			if e.Addr.Addr().Is6() != (family == v1.IPv6Protocol) {
				t.Fatalf("endpoint %s in %s result", e, family)
			}
		}
	}
	if seen != len(want) {
		t.Fatalf("Merge returned %d endpoints, the slices list %d distinct ones", seen, len(want))
	}
}

func reversed[T any](s []T) []T {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

func rotate[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return append(slices.Clone(s[1:]), s[0])
}
