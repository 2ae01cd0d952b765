//go:build linux

package conntrack

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
)

// flow builds the conntrack entry of a client 10.100.0.2:40000 sending to
// origDst, answered from replySrc; masquerade sets the reply destination
// to the node's bridge address, as SNAT does. to16 stores IPv4 addresses in
// their 16-byte form, as net.IP may.
func flow(proto uint8, origDst, replySrc string, masquerade, to16 bool) *netlink.ConntrackFlow {
	ip := func(a netip.Addr) net.IP {
		b := net.IP(a.AsSlice())
		if to16 {
			b = b.To16()
		}
		return b
	}
	client := netip.MustParseAddrPort("10.100.0.2:40000")
	dst, src := netip.MustParseAddrPort(origDst), netip.MustParseAddrPort(replySrc)
	replyDst := client
	if masquerade {
		replyDst = netip.MustParseAddrPort("10.244.1.1:61000")
	}
	return &netlink.ConntrackFlow{
		FamilyType: 2,
		Forward: netlink.IPTuple{Protocol: proto, SrcIP: ip(client.Addr()), SrcPort: client.Port(),
			DstIP: ip(dst.Addr()), DstPort: dst.Port()},
		Reverse: netlink.IPTuple{Protocol: proto, SrcIP: ip(src.Addr()), SrcPort: src.Port(),
			DstIP: ip(replyDst.Addr()), DstPort: replyDst.Port()},
	}
}

// TestStaleFilter runs the index cases through the netlink filter, as
// ConntrackDeleteFilters calls it, with the address forms and NAT variants
// the kernel reports.
func TestStaleFilter(t *testing.T) {
	f := &staleFilter{index: newIndex(testSnapshot(t), nil, false), log: Options{}.logger()}
	for _, c := range flowCases {
		for _, v := range []struct {
			name             string
			masquerade, to16 bool
		}{{"", false, false}, {" (masqueraded)", true, false}, {" (16-byte addresses)", false, true}} {
			got := f.MatchConntrackFlow(flow(c.proto, c.origDst, c.replySrc, v.masquerade, v.to16))
			if want := c.want != keep; got != want {
				t.Errorf("%s%s: match = %v, want %v (%v)", c.name, v.name, got, want, c.want)
			}
		}
	}
}

// TestStaleFilterEmptyFlow: a flow netlink could not parse has zero
// tuples; it must not match anything.
func TestStaleFilterEmptyFlow(t *testing.T) {
	f := &staleFilter{index: newIndex(testSnapshot(t), nil, false), log: Options{}.logger()}
	if f.MatchConntrackFlow(&netlink.ConntrackFlow{}) {
		t.Errorf("an empty flow matched")
	}
}
