package netprefix_test

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/lbkit/lbkit/internal/netprefix"
)

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func TestDisjoint(t *testing.T) {
	in := prefixes("10.1.2.3/16", "10.0.0.0/8", "192.168.0.0/24", "192.168.0.0/24", "fd00::/64", "192.168.1.0/24")
	in = append(in, netip.Prefix{})
	orig := slices.Clone(in)
	got := netprefix.Disjoint(in)
	want := prefixes("10.0.0.0/8", "192.168.0.0/24", "192.168.1.0/24", "fd00::/64")
	if !slices.Equal(got, want) {
		t.Errorf("Disjoint = %v, want %v", got, want)
	}
	if !slices.Equal(in, orig) {
		t.Errorf("Disjoint modified its input: %v", in)
	}
	if got := netprefix.Of(true, in); !slices.Equal(got, prefixes("fd00::/64")) {
		t.Errorf("Of(v6) = %v", got)
	}
	if got := netprefix.Of(false, prefixes("::ffff:10.0.0.0/104", "10.0.0.0/8")); !slices.Equal(got, prefixes("10.0.0.0/8")) {
		t.Errorf("Of(v4) = %v, want the mapped prefix left out", got)
	}
}

func ExampleDisjoint() {
	fmt.Println(netprefix.Disjoint(prefixes("10.244.1.0/24", "10.244.0.0/16", "10.96.0.0/12")))
	// Output: [10.96.0.0/12 10.244.0.0/16]
}
