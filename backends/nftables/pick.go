package nftables

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"

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
	proto v1.Protocol
	// clusterIP, when valid, puts first a rule that marks traffic to it
	// for masquerading (the chain carries internal traffic): traffic from
	// outside the pod CIDRs, or all of it with masqueradeAll.
	clusterIP     netip.Addr
	masqueradeAll bool
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

// eachRule calls f with each rule, built in r (returned for reuse).
func (p *endpointPick) eachRule(r rule, f func(rule)) rule {
	n := len(p.eps)
	if p.clusterIP.IsValid() {
		r = append(r[:0], addrIs(fDaddr, p.clusterIP))
		if !p.masqueradeAll {
			r = append(r, notInSet(setClusterCIDRs, fSaddr))
		}
		r = append(r, jump(chainMarkMasq))
		f(r)
	}
	if p.affinity != nil {
		for i := range p.eps {
			set := p.affinity[p.eps[i].Addr]
			r = append(r[:0], inSet(set, fSaddr))
			r = p.appendDNAT(r, p.eps[i].Addr, set)
			f(r)
		}
	}
	for i := range p.eps {
		r = r[:0]
		if i < n-1 {
			r = append(r, numgen(uint32(n-i)))
		}
		r = p.appendDNAT(r, p.eps[i].Addr, p.affinity[p.eps[i].Addr])
		f(r)
	}
	return r
}

// appendDNAT appends "[update @set { ip saddr } ]meta l4proto P dnat to EP".
func (p *endpointPick) appendDNAT(r rule, ep netip.AddrPort, affinitySet string) rule {
	if affinitySet != "" {
		r = append(r, update(affinitySet, fSaddr))
	}
	return append(r, l4proto(p.proto), dnat(ep))
}
