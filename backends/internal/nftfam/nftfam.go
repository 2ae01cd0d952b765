// Package nftfam holds what differs between the two IP families in the
// nftables tables lbkit writes (the nftables backend's, and the small
// tables of the IPVS backend): the spellings, the loopback range, and which
// addresses and prefixes belong to a family.
package nftfam

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/internal/netprefix"
)

// Family is one IP family, as nftables spells it.
type Family struct {
	// IP is "ip" or "ip6": the table's family, and the payload keyword
	// ("ip saddr").
	IP string
	// AddrType is the set type of one address.
	AddrType string
	// Loopback is what "never loopback" excludes.
	Loopback netip.Prefix
	Is6      bool
}

var (
	IPv4 = Family{IP: "ip", AddrType: "ipv4_addr", Loopback: netip.MustParsePrefix("127.0.0.0/8")}
	IPv6 = Family{IP: "ip6", AddrType: "ipv6_addr", Loopback: netip.MustParsePrefix("::1/128"), Is6: true}
)

// Of returns the Family of a Kubernetes IP family (IPv4 unless IPv6).
func Of(f v1.IPFamily) Family {
	if f == v1.IPv6Protocol {
		return IPv6
	}
	return IPv4
}

// Has reports whether a is a valid address of the family. An IPv4-mapped
// IPv6 address belongs to neither.
func (f Family) Has(a netip.Addr) bool { return a.IsValid() && a.Is6() == f.Is6 && !a.Is4In6() }

// Prefixes returns the valid prefixes of in that are of the family,
// masked, sorted, and without any that another one contains (see
// netprefix.Disjoint).
func (f Family) Prefixes(in []netip.Prefix) []netip.Prefix { return netprefix.Of(f.Is6, in) }

// NodePortIPs returns the addresses of in on which a backend that listens
// on node addresses serves node ports: of the family, not loopback,
// link-local, multicast or unspecified, and inside the family's prefixes of
// allowed when it has any (prefixes of the other family restrict nothing,
// as in kube-proxy); sorted, without duplicates.
func (f Family) NodePortIPs(in []netip.Addr, allowed []netip.Prefix) []netip.Addr {
	allowed = f.Prefixes(allowed)
	var out []netip.Addr
	for _, a := range in {
		a = a.Unmap()
		if !f.Has(a) || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
			continue
		}
		if len(allowed) > 0 && !slices.ContainsFunc(allowed, func(p netip.Prefix) bool { return p.Contains(a) }) {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
