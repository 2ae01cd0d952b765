package conntrack

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
)

// The protocol numbers conntrack reports.
const (
	protoTCP = 6
	protoUDP = 17
)

// verdict says why a flow is stale, or that it is not.
type verdict int

const (
	keep verdict = iota
	// staleEndpoint: DNATed to an endpoint that is not a serving
	// endpoint of the frontend's port.
	staleEndpoint
	// staleUnNATed: not DNATed, to a service address and port, or to a
	// node port that has serving endpoints.
	staleUnNATed
	// staleGone: DNATed, through a frontend that is gone, to an endpoint
	// it used.
	staleGone
	// staleRemoved: a TCP flow DNATed to an endpoint that left its
	// service port (Options.ReapTCP).
	staleRemoved
)

func (v verdict) String() string {
	switch v {
	case staleEndpoint:
		return "endpoint not serving"
	case staleUnNATed:
		return "not DNATed by the service"
	case staleGone:
		return "service port or address removed"
	case staleRemoved:
		return "TCP endpoint removed"
	}
	return "keep"
}

// backendSet is what one frontend may lead to: the union of the serving
// endpoints of its service ports (several only in a misconfigured cluster,
// where two services claim one external IP and port).
type backendSet map[netip.AddrPort]struct{}

// index is the desired state Reconcile compares flows with, built from one
// snapshot: every UDP frontend and the serving endpoints of its port.
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
	// goneAddr and goneNodePort are frontends a Diff removed (see
	// addGone), with the endpoints they led to.
	goneAddr     map[netip.AddrPort]backendSet
	goneNodePort map[uint16]backendSet
	// tcp indexes TCP frontends and every endpoint their ports list, for
	// Options.ReapTCP; nil when off.
	tcp *tcpIndex
}

// tcpIndex is what ReapTCP needs: for every TCP frontend, every endpoint
// its service port lists (ready or not, terminating or not); and the
// frontends and endpoints a Diff removed.
type tcpIndex struct {
	byAddr, goneAddr         map[netip.AddrPort]backendSet
	byNodePort, goneNodePort map[uint16]backendSet
}

// newIndex indexes the UDP service ports of snap, and its TCP ports when
// reapTCP. A nil snapshot gives an empty index.
func newIndex(snap *servicemap.Snapshot, nodePortAddrs []netip.Prefix, reapTCP bool) *index {
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
	if reapTCP {
		x.tcp = &tcpIndex{
			byAddr: map[netip.AddrPort]backendSet{}, goneAddr: map[netip.AddrPort]backendSet{},
			byNodePort: map[uint16]backendSet{}, goneNodePort: map[uint16]backendSet{},
		}
	}
	for p := range snap.All() {
		x.clusterIPs[p.ClusterIP] = struct{}{}
		if p.Protocol == v1.ProtocolTCP && x.tcp != nil {
			x.tcp.add(p, x.tcp.byAddr, x.tcp.byNodePort, p.Endpoints)
		}
		if p.Protocol != v1.ProtocolUDP {
			continue
		}
		for _, a := range slices.Concat([]netip.Addr{p.ClusterIP}, p.ExternalIPs, p.LoadBalancerIPs) {
			setFor(x.byAddr, netip.AddrPortFrom(a, p.Port)).addServing(p.Endpoints)
		}
		if p.NodePort != 0 {
			setFor(x.byNodePort, p.NodePort).addServing(p.Endpoints)
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

// addServing adds the serving endpoints of eps, on any node, terminating or
// not, whether or not topology or a traffic policy lets this node choose
// them: as kube-proxy's conntrack cleanup, a flow keeps its endpoint as
// long as that serves, so a UDP flow lives as long as a TCP connection
// would, and a change of hints or policies leaves existing flows alone.
func (s backendSet) addServing(eps []endpoints.Endpoint) {
	for _, ep := range eps {
		if ep.Serving {
			s[ep.Addr] = struct{}{}
		}
	}
}

// addGone records the frontends that c took away and next no longer has,
// from c's StaleServices (a removed UDP port, in its From version: flows
// through any of its frontends to any of its endpoints) and StaleEndpoints
// (flows through the old port's frontends to that endpoint). Flows through
// a frontend next still has are judged by next alone, as before.
func (x *index) addGone(c *servicemap.Changes) {
	if x.tcp != nil {
		x.tcp.addGone(c)
	}
	if x.goneAddr == nil {
		x.goneAddr, x.goneNodePort = map[netip.AddrPort]backendSet{}, map[uint16]backendSet{}
	}
	add := func(p *servicemap.ServicePort, eps backendSet) {
		if p.Protocol != v1.ProtocolUDP || len(eps) == 0 {
			return
		}
		for _, a := range slices.Concat([]netip.Addr{p.ClusterIP}, p.ExternalIPs, p.LoadBalancerIPs) {
			if k := netip.AddrPortFrom(a, p.Port); x.byAddr[k] == nil {
				setFor(x.goneAddr, k).union(eps)
			}
		}
		if p.NodePort != 0 && x.byNodePort[p.NodePort] == nil {
			setFor(x.goneNodePort, p.NodePort).union(eps)
		}
	}
	for _, p := range c.StaleServices {
		eps := backendSet{}
		eps.add(p.Endpoints)
		add(p, eps)
	}
	for _, se := range c.StaleEndpoints {
		add(se.Service, backendSet{se.Endpoint: {}})
	}
}

// add records the frontends of TCP port p in byAddr and byNodePort, leading
// to eps.
func (t *tcpIndex) add(p *servicemap.ServicePort, byAddr map[netip.AddrPort]backendSet, byNodePort map[uint16]backendSet, eps []endpoints.Endpoint) {
	for _, a := range slices.Concat([]netip.Addr{p.ClusterIP}, p.ExternalIPs, p.LoadBalancerIPs) {
		setFor(byAddr, netip.AddrPortFrom(a, p.Port)).add(eps)
	}
	if p.NodePort != 0 {
		setFor(byNodePort, p.NodePort).add(eps)
	}
}

// addGoneTCP records what c took away from TCP ports: removed ports'
// frontends with their endpoints, and endpoints an updated port no longer
// lists, through its old frontends.
func (t *tcpIndex) addGone(c *servicemap.Changes) {
	for _, p := range c.Removed {
		if p.Protocol == v1.ProtocolTCP {
			t.add(p, t.goneAddr, t.goneNodePort, p.Endpoints)
		}
	}
	for _, u := range c.Updated {
		if u.Old.Protocol != v1.ProtocolTCP {
			continue
		}
		var left []endpoints.Endpoint
		for _, ep := range u.Old.Endpoints {
			if !slices.ContainsFunc(u.New.Endpoints, func(n endpoints.Endpoint) bool { return n.Addr == ep.Addr }) {
				left = append(left, ep)
			}
		}
		if len(left) > 0 {
			t.add(u.Old, t.goneAddr, t.goneNodePort, left)
		}
	}
}

// check decides one DNATed TCP flow: stale when its endpoint is not among
// those its frontend's port lists, or is one a removal took away.
func (t *tcpIndex) check(x *index, origDst, replySrc netip.AddrPort) verdict {
	if replySrc == origDst {
		return keep // not DNATed: not ours
	}
	if _, gone := t.goneAddr[origDst][replySrc]; gone {
		if _, still := t.byAddr[origDst][replySrc]; !still {
			return staleRemoved
		}
	}
	if set, ok := t.byAddr[origDst]; ok {
		if _, listed := set[replySrc]; !listed {
			return staleRemoved
		}
		return keep
	}
	if !x.maybeNodeAddr(origDst.Addr()) {
		return keep
	}
	if _, gone := t.goneNodePort[origDst.Port()][replySrc]; gone {
		if _, still := t.byNodePort[origDst.Port()][replySrc]; !still {
			return staleRemoved
		}
	}
	if set, ok := t.byNodePort[origDst.Port()]; ok {
		if _, listed := set[replySrc]; !listed {
			return staleRemoved
		}
	}
	return keep
}

func (s backendSet) union(o backendSet) {
	for a := range o {
		s[a] = struct{}{}
	}
}

// empty reports whether no flow can be stale: the snapshot has no UDP port
// and nothing is gone.
func (x *index) empty() bool {
	tcpEmpty := x.tcp == nil || len(x.tcp.byAddr)+len(x.tcp.byNodePort)+len(x.tcp.goneAddr)+len(x.tcp.goneNodePort) == 0
	return tcpEmpty && len(x.byAddr) == 0 && len(x.byNodePort) == 0 && len(x.goneAddr) == 0 && len(x.goneNodePort) == 0
}

// check decides one flow, given its protocol, original destination and reply
// source. A flow whose reply comes from where it was sent was not DNATed.
//
// A flow to a known service address and port is judged by that frontend
// alone; only a flow to any other address can be a node port flow. A flow
// through a frontend that is gone is stale when it was DNATed to one of the
// endpoints that frontend led to (so a flow to an address that now belongs
// to someone else outside the cluster is left alone).
func (x *index) check(proto uint8, origDst, replySrc netip.AddrPort) verdict {
	if proto == protoTCP && x.tcp != nil {
		return x.tcp.check(x, origDst, replySrc)
	}
	if proto != protoUDP {
		return keep
	}
	set, ok := x.byAddr[origDst]
	nodePort := !ok
	if !ok {
		if _, was := x.goneAddr[origDst][replySrc]; was && replySrc != origDst {
			return staleGone
		}
		if _, np := x.byNodePort[origDst.Port()]; !np && x.maybeNodeAddr(origDst.Addr()) {
			if _, was := x.goneNodePort[origDst.Port()][replySrc]; was && replySrc != origDst {
				return staleGone
			}
		}
		if set, ok = x.byNodePort[origDst.Port()]; !ok || !x.maybeNodeAddr(origDst.Addr()) {
			return keep
		}
	}
	if replySrc == origDst {
		// A service address belongs to the service, endpoints or not. A
		// node port without serving endpoints is left alone, as in
		// kube-proxy: a flow to it that the rules did not DNAT may be to
		// some other host's port of that number.
		if nodePort && len(set) == 0 {
			return keep
		}
		return staleUnNATed
	}
	if _, serving := set[replySrc]; !serving {
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
