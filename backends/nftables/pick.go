//go:build linux

package nftables

import (
	"net/netip"
	"strconv"

	"github.com/lbkit/lbkit/endpoints"
)

// endpointPick chooses one endpoint without anonymous sets (binding
// thousands of them in one transaction takes minutes) and without a chain
// per endpoint: of n endpoints, rule i (0-based) matches with probability
// 1/(n-i) and the last one always, which gives each endpoint 1/n. With
// ClientIP affinity, a client found in an endpoint's set goes to it first,
// and every choice records (and refreshes) the client in the chosen
// endpoint's set.
type endpointPick struct {
	ip    string // "ip" or "ip6"
	proto string
	// clusterIP, when valid, puts first a rule that marks traffic to it
	// from outside the pod CIDRs for masquerading (the chain carries
	// internal traffic and ClusterCIDRs are known).
	clusterIP netip.Addr
	// eps is shared with the snapshot and MUST NOT be modified.
	eps []endpoints.Endpoint
	// affinity maps an endpoint to its affinity set; nil without affinity.
	affinity map[netip.AddrPort]string
}

func (p *endpointPick) count() int {
	n := len(p.eps)
	if p.affinity != nil {
		n *= 2
	}
	if p.clusterIP.IsValid() {
		n++
	}
	return n
}

func (p *endpointPick) eachRule(buf []byte, f func([]byte)) []byte {
	n := len(p.eps)
	if p.clusterIP.IsValid() {
		buf = append(buf[:0], p.ip...)
		buf = append(buf, " daddr "...)
		buf = p.clusterIP.AppendTo(buf)
		buf = append(buf, ' ')
		buf = append(buf, p.ip...)
		buf = append(buf, " saddr != @"+setClusterCIDRs+" jump "+chainMarkMasq...)
		f(buf)
	}
	if p.affinity != nil {
		for i := range p.eps {
			set := p.affinity[p.eps[i].Addr]
			buf = append(buf[:0], p.ip...)
			buf = append(buf, " saddr @"...)
			buf = append(buf, set...)
			buf = append(buf, ' ')
			buf = p.appendDNAT(buf, p.eps[i].Addr, set)
			f(buf)
		}
	}
	for i := range p.eps {
		buf = buf[:0]
		if i < n-1 {
			buf = append(buf, "numgen random mod "...)
			buf = strconv.AppendInt(buf, int64(n-i), 10)
			buf = append(buf, " == 0 "...)
		}
		buf = p.appendDNAT(buf, p.eps[i].Addr, p.affinity[p.eps[i].Addr])
		f(buf)
	}
	return buf
}

// appendDNAT appends "[update @set { ip saddr } ]meta l4proto P dnat to EP".
func (p *endpointPick) appendDNAT(buf []byte, ep netip.AddrPort, affinitySet string) []byte {
	if affinitySet != "" {
		buf = append(buf, "update @"...)
		buf = append(buf, affinitySet...)
		buf = append(buf, " { "...)
		buf = append(buf, p.ip...)
		buf = append(buf, " saddr } "...)
	}
	buf = append(buf, "meta l4proto "...)
	buf = append(buf, p.proto...)
	buf = append(buf, " dnat to "...)
	return ep.AppendTo(buf)
}
