package nftfam_test

import (
	"net/netip"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends/internal/nftfam"
)

func TestFamily(t *testing.T) {
	v4, v6 := nftfam.Of(v1.IPv4Protocol), nftfam.Of(v1.IPv6Protocol)
	if v4.IP != "ip" || v6.IP != "ip6" || nftfam.Of("") != v4 {
		t.Fatalf("Of: %+v %+v", v4, v6)
	}
	for _, c := range []struct {
		addr   string
		v4, v6 bool
	}{{"10.0.0.1", true, false}, {"fd00::1", false, true}, {"::ffff:10.0.0.1", false, false}} {
		a := netip.MustParseAddr(c.addr)
		if v4.Has(a) != c.v4 || v6.Has(a) != c.v6 {
			t.Errorf("%s: Has = %v, %v; want %v, %v", a, v4.Has(a), v6.Has(a), c.v4, c.v6)
		}
	}
	if v4.Has(netip.Addr{}) || v6.Has(netip.Addr{}) {
		t.Error("the zero address belongs to a family")
	}
	in := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("10.0.0.0/8")}
	if got := v4.Prefixes(in); !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}) {
		t.Errorf("Prefixes = %v", got)
	}
}

func TestNodePortIPs(t *testing.T) {
	addrs := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	in := addrs("10.0.0.2", "127.0.0.1", "169.254.0.1", "224.0.0.1", "0.0.0.0", "::ffff:192.168.1.5", "fd00::1", "10.0.0.2", "192.168.1.5", "10.9.0.1")
	if got, want := nftfam.IPv4.NodePortIPs(in, nil), addrs("10.0.0.2", "10.9.0.1", "192.168.1.5"); !slices.Equal(got, want) {
		t.Errorf("no prefixes: %v, want %v", got, want)
	}
	allowed := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00::/8")}
	if got, want := nftfam.IPv4.NodePortIPs(in, allowed), addrs("10.0.0.2"); !slices.Equal(got, want) {
		t.Errorf("10.0.0.0/24: %v, want %v", got, want)
	}
	// Only the other family's prefixes: no restriction.
	if got, want := nftfam.IPv6.NodePortIPs(in, allowed[:1]), addrs("fd00::1"); !slices.Equal(got, want) {
		t.Errorf("IPv6 with an IPv4 prefix: %v, want %v", got, want)
	}
}
