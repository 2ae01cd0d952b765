package iptables

import (
	"net/netip"
	"slices"
)

// family holds what differs between IPv4 and IPv6 rules.
type family struct {
	ipv6     bool
	loopback netip.Prefix
	pods     []netip.Prefix
	// nodePortsAll is true when node ports are served on every local
	// address (but loopback): no NodePortAddresses of this family, or one
	// of the whole family, as in kube-proxy. Else nodePorts are this
	// family's NodePortAddresses, masked and sorted, without those inside
	// loopback (none at all when every one was).
	nodePortsAll bool
	nodePorts    []netip.Prefix
}

func (sp *Spec) family(ipv6 bool) family {
	f := family{ipv6: ipv6, loopback: netip.MustParsePrefix("127.0.0.0/8")}
	if ipv6 {
		f.loopback = netip.MustParsePrefix("::1/128")
	}
	for _, p := range sp.ClusterCIDRs {
		if p.IsValid() && p.Addr().Is6() == ipv6 {
			f.pods = append(f.pods, p.Masked())
		}
	}
	f.nodePortsAll = true
	for _, p := range sp.NodePortAddresses {
		if !p.IsValid() || p.Addr().Is6() != ipv6 {
			continue
		}
		f.nodePortsAll = false
		if p.Bits() >= f.loopback.Bits() && f.loopback.Contains(p.Addr()) {
			continue
		}
		f.nodePorts = append(f.nodePorts, p.Masked())
	}
	slices.SortFunc(f.nodePorts, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	f.nodePorts = slices.Compact(f.nodePorts)
	if slices.ContainsFunc(f.nodePorts, func(p netip.Prefix) bool { return p.Bits() == 0 }) {
		f.nodePortsAll = true
	}
	return f
}
