// Package netprefix holds the prefix helpers lbkit's packages share: one
// order for prefixes, and the disjoint list an interval set or a list of
// non-overlapping rules needs.
package netprefix

import (
	"net/netip"
	"slices"
)

// Compare orders prefixes by address, then by length.
func Compare(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// Disjoint returns the valid prefixes of in, masked, sorted by Compare,
// without duplicates and without any prefix another one contains. Two
// prefixes either nest or do not overlap, so the result is disjoint. in is
// not modified.
func Disjoint(in []netip.Prefix) []netip.Prefix {
	ps := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		if p.IsValid() {
			ps = append(ps, p.Masked())
		}
	}
	slices.SortFunc(ps, Compare)
	out := ps[:0]
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1].Overlaps(p) {
			continue // sorted: the earlier one contains p
		}
		out = append(out, p)
	}
	return out
}

// Of returns the valid prefixes of in that are of one family (IPv6 when
// v6; IPv4-mapped IPv6 prefixes belong to neither), as Disjoint does.
func Of(v6 bool, in []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range in {
		if p.IsValid() && p.Addr().Is6() == v6 && !p.Addr().Is4In6() {
			out = append(out, p)
		}
	}
	return Disjoint(out)
}
