package conntrack

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
)

// protoUDP is IPPROTO_UDP, the protocol number conntrack reports.
const protoUDP = 17

// verdict says why a flow is stale, or that it is not.
type verdict int

const (
	keep verdict = iota
	// staleEndpoint: DNATed to an endpoint the frontend no longer uses.
	staleEndpoint
	// staleUnNATed: not DNATed, to a frontend that now has endpoints.
	staleUnNATed
)

func (v verdict) String() string {
	switch v {
	case staleEndpoint:
		return "endpoint no longer used"
	case staleUnNATed:
		return "not DNATed, service has endpoints now"
	}
	return "keep"
}

// backendSet is what one frontend may lead to: the union of the endpoints
// its service ports use (several only in a misconfigured cluster, where two
// services claim one external IP and port).
type backendSet map[netip.AddrPort]struct{}

// index is the desired state Reconcile compares flows with, built from one
// snapshot: every UDP frontend and the endpoints it uses.
type index struct {
	// byAddr maps a service address (cluster, external or load-balancer
	// IP) and port to its endpoints.
	byAddr map[netip.AddrPort]backendSet
	// byNodePort maps a node port to its endpoints.
	byNodePort map[uint16]backendSet
	// clusterIPs are never node addresses, so a flow to one is never a
	// node port flow.
	clusterIPs map[netip.Addr]struct{}
	// nodePortAddrs narrows node port flows to these destinations, of the
	// snapshot's family; empty means any address but a cluster IP.
	nodePortAddrs []netip.Prefix
}

// newIndex indexes the UDP service ports of snap. A nil snapshot gives an
// empty index.
func newIndex(snap *servicemap.Snapshot, nodePortAddrs []netip.Prefix) *index {
	x := &index{
		byAddr:     map[netip.AddrPort]backendSet{},
		byNodePort: map[uint16]backendSet{},
		clusterIPs: map[netip.Addr]struct{}{},
	}
	// Only the snapshot's family counts: prefixes of the other one leave
	// this family unrestricted, as they do the backends (and kube-proxy).
	ipv6 := snap != nil && snap.IPFamily() == v1.IPv6Protocol
	for _, p := range nodePortAddrs {
		if p.IsValid() && p.Addr().Is6() == ipv6 {
			x.nodePortAddrs = append(x.nodePortAddrs, p)
		}
	}
	for p := range snap.All() {
		x.clusterIPs[p.ClusterIP] = struct{}{}
		if p.Protocol != v1.ProtocolUDP {
			continue
		}
		used := p.UsedEndpoints()
		for _, a := range slices.Concat([]netip.Addr{p.ClusterIP}, p.ExternalIPs, p.LoadBalancerIPs) {
			setFor(x.byAddr, netip.AddrPortFrom(a, p.Port)).add(used)
		}
		if p.NodePort != 0 {
			setFor(x.byNodePort, p.NodePort).add(used)
		}
	}
	return x
}

// setFor returns the set of frontend k in m, creating it if needed.
func setFor[K comparable](m map[K]backendSet, k K) backendSet {
	s := m[k]
	if s == nil {
		s = backendSet{}
		m[k] = s
	}
	return s
}

func (s backendSet) add(eps []endpoints.Endpoint) {
	for _, ep := range eps {
		s[ep.Addr] = struct{}{}
	}
}

// empty reports whether no flow can be stale: the snapshot has no UDP port.
func (x *index) empty() bool { return len(x.byAddr) == 0 && len(x.byNodePort) == 0 }

// check decides one flow, given its protocol, original destination and reply
// source. A flow whose reply comes from where it was sent was not DNATed.
//
// A flow to a known service address and port is judged by that frontend
// alone; only a flow to any other address can be a node port flow.
func (x *index) check(proto uint8, origDst, replySrc netip.AddrPort) verdict {
	if proto != protoUDP {
		return keep
	}
	set, ok := x.byAddr[origDst]
	if !ok {
		if set, ok = x.byNodePort[origDst.Port()]; !ok || !x.maybeNodeAddr(origDst.Addr()) {
			return keep
		}
	}
	if replySrc == origDst {
		if len(set) > 0 {
			return staleUnNATed
		}
		return keep
	}
	if _, used := set[replySrc]; !used {
		return staleEndpoint
	}
	return keep
}

// maybeNodeAddr reports whether a node port may be served on a.
func (x *index) maybeNodeAddr(a netip.Addr) bool {
	if _, ok := x.clusterIPs[a]; ok {
		return false
	}
	if len(x.nodePortAddrs) == 0 {
		return true
	}
	return slices.ContainsFunc(x.nodePortAddrs, func(p netip.Prefix) bool { return p.Contains(a) })
}
