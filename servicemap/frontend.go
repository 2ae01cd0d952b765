package servicemap

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/internal/pmap"
)

// FrontendKind is the kind of address a service port is reached at.
type FrontendKind uint8

const (
	FrontendClusterIP FrontendKind = iota
	FrontendNodePort
	FrontendExternalIP
	FrontendLoadBalancerIP
)

func (k FrontendKind) String() string {
	switch k {
	case FrontendClusterIP:
		return "cluster IP"
	case FrontendNodePort:
		return "node port"
	case FrontendExternalIP:
		return "external IP"
	case FrontendLoadBalancerIP:
		return "load-balancer IP"
	}
	return "unknown frontend"
}

// FrontendKey is one address:protocol:port a service port is reached at. A
// node port has no address (its Addr's address is the zero netip.Addr): it
// is reached at every node address.
type FrontendKey struct {
	Protocol v1.Protocol
	Addr     netip.AddrPort
}

func (k FrontendKey) String() string {
	if !k.Addr.Addr().IsValid() {
		return "node port " + strconv.Itoa(int(k.Addr.Port())) + "/" + string(k.Protocol)
	}
	return k.Addr.String() + "/" + string(k.Protocol)
}

func nodePortKey(proto v1.Protocol, port uint16) FrontendKey {
	return FrontendKey{Protocol: proto, Addr: netip.AddrPortFrom(netip.Addr{}, port)}
}

// frontendsOf yields every frontend of p with its kind.
func frontendsOf(p *ServicePort, yield func(FrontendKey, FrontendKind)) {
	at := func(a netip.Addr) FrontendKey { return FrontendKey{p.Protocol, netip.AddrPortFrom(a, p.Port)} }
	yield(at(p.ClusterIP), FrontendClusterIP)
	for _, a := range p.ExternalIPs {
		yield(at(a), FrontendExternalIP)
	}
	for _, a := range p.LoadBalancerIPs {
		yield(at(a), FrontendLoadBalancerIP)
	}
	if p.NodePort != 0 {
		yield(nodePortKey(p.Protocol, p.NodePort), FrontendNodePort)
	}
}

// A claim is one service port claiming a frontend. Every frontend has one
// owner in a snapshot, whatever the order events came in (CVE-2020-8554:
// a Service must not take over another's address by naming it as its
// external or load-balancer IP):
//
//  1. a cluster IP beats an external or load-balancer IP (node ports only
//     meet node ports);
//  2. between claims of the same kind, the older Service wins
//     (creationTimestamp; a Service without one counts as the newest);
//  3. then the Service whose namespace/name sorts first, then the port
//     name.
type claim struct {
	service string // "namespace/name"
	port    string // the port's name
	kind    FrontendKind
	created time.Time
}

func (c claim) equal(d claim) bool {
	return c.service == d.service && c.port == d.port && c.kind == d.kind && c.created.Equal(d.created)
}

func (c claim) class() int {
	if c.kind == FrontendClusterIP {
		return 0
	}
	return 1
}

// compareClaims orders claims by precedence: the first owns the frontend.
func compareClaims(a, b claim) int {
	if c := cmp.Compare(a.class(), b.class()); c != 0 {
		return c
	}
	if !a.created.Equal(b.created) {
		switch {
		case a.created.IsZero():
			return 1
		case b.created.IsZero():
			return -1
		}
		return a.created.Compare(b.created)
	}
	return cmp.Or(strings.Compare(a.service, b.service), strings.Compare(a.port, b.port))
}

// frontendRef is a frontend's entry in a snapshot: the owning service
// (its key) and the index of the port in its entry. It names the port
// rather than pointing at it, so that an endpoint change, which replaces
// the port, leaves the index as it was.
type frontendRef struct {
	key  string
	idx  int32
	kind FrontendKind
}

// sameFrontends reports whether a and b are reached at the same addresses.
func sameFrontends(a, b *ServicePort) bool {
	return a.ClusterIP == b.ClusterIP && a.Port == b.Port && a.Protocol == b.Protocol && a.NodePort == b.NodePort &&
		slices.Equal(a.ExternalIPs, b.ExternalIPs) && slices.Equal(a.LoadBalancerIPs, b.LoadBalancerIPs)
}

func newFrontendMap() pmap.Map[FrontendKey, frontendRef] {
	return pmap.New[FrontendKey, frontendRef](hashFrontend)
}

func hashFrontend(k FrontendKey) uint64 {
	h := pmap.String(pmap.Offset, string(k.Protocol))
	b := k.Addr.Addr().As16()
	for _, c := range b {
		h = pmap.Byte(h, c)
	}
	if !k.Addr.Addr().IsValid() {
		h = pmap.Byte(h, 0xff)
	}
	return pmap.Finalize(pmap.Byte(pmap.Byte(h, byte(k.Addr.Port()>>8)), byte(k.Addr.Port())))
}
