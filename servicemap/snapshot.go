package servicemap

import (
	"iter"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/internal/pmap"
	"github.com/lbkit/lbkit/topology"
)

// Snapshot is an immutable view of every service port a node programs, at
// one Version. It is safe to share between goroutines. A nil *Snapshot is
// valid and empty (version 0): Diff(nil, s) is a full sync.
type Snapshot struct {
	version uint64
	node    topology.Node
	family  v1.IPFamily
	root    *trieNode
	ports   int
	// frontends indexes every frontend to the one port that owns it, in a
	// persistent map shared between versions like the trie.
	frontends    pmap.Map[FrontendKey, frontendRef]
	serviceCIDRs []netip.Prefix
}

// Version increases by one for each snapshot that differs from the previous
// one. The first non-empty snapshot of a Tracker has version 1.
func (s *Snapshot) Version() uint64 {
	if s == nil {
		return 0
	}
	return s.version
}

// Node returns the node the snapshot was resolved for.
func (s *Snapshot) Node() topology.Node {
	if s == nil {
		return topology.Node{}
	}
	return s.node
}

// IPFamily returns the IP family of every address in the snapshot.
func (s *Snapshot) IPFamily() v1.IPFamily {
	if s == nil {
		return ""
	}
	return s.family
}

// Len returns the number of service ports.
func (s *Snapshot) Len() int {
	if s == nil {
		return 0
	}
	return s.ports
}

// Lookup returns the service port with the given name, or nil.
func (s *Snapshot) Lookup(name ServicePortName) *ServicePort {
	for _, p := range s.Service(name.Namespace, name.Name) {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Service returns the ports of one service, sorted by name then protocol,
// or nil when the snapshot does not hold it.
func (s *Snapshot) Service(namespace, name string) []*ServicePort {
	if s == nil {
		return nil
	}
	if e := trieGet(s.root, namespace+"/"+name); e != nil {
		return e.ports
	}
	return nil
}

// All yields every service port in no particular order; use Ports for a
// sorted list.
func (s *Snapshot) All() iter.Seq[*ServicePort] {
	return func(yield func(*ServicePort) bool) {
		if s == nil {
			return
		}
		stop := false
		trieWalk(s.root, 0, func(e *entry) {
			for _, p := range e.ports {
				if stop || !yield(p) {
					stop = true
					return
				}
			}
		})
	}
}

// Frontend returns the service port reached at addr over proto (its cluster
// IP, an external IP or a load-balancer IP, with the service port) and the
// kind of that address, or nil. Every frontend has one owner in a
// snapshot (see Tracker). It costs one lookup and allocates nothing.
func (s *Snapshot) Frontend(proto v1.Protocol, addr netip.AddrPort) (*ServicePort, FrontendKind) {
	if s == nil || !addr.Addr().IsValid() {
		return nil, 0
	}
	ref, ok := s.frontends.Get(FrontendKey{Protocol: proto, Addr: netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())})
	if !ok {
		return nil, 0
	}
	return s.port(ref), ref.kind
}

// NodePort returns the service port with node port port over proto, or
// nil. It allocates nothing.
func (s *Snapshot) NodePort(proto v1.Protocol, port uint16) *ServicePort {
	if s == nil {
		return nil
	}
	ref, ok := s.frontends.Get(nodePortKey(proto, port))
	if !ok {
		return nil
	}
	return s.port(ref)
}

// ServiceCIDRs returns the service ranges of the snapshot's family (from
// ServiceCIDR objects and Options.ServiceCIDRs), sorted, none inside
// another. The slice MUST NOT be modified.
func (s *Snapshot) ServiceCIDRs() []netip.Prefix {
	if s == nil {
		return nil
	}
	return s.serviceCIDRs
}

func (s *Snapshot) port(ref frontendRef) *ServicePort {
	if e := trieGet(s.root, ref.key); e != nil && int(ref.idx) < len(e.ports) {
		return e.ports[ref.idx]
	}
	return nil
}

// reindex updates a frontend index for one service entry going from old
// to next (either may be nil). A port at the same index with the same
// addresses keeps its entries (the common case: only its endpoints
// changed); the others' are removed, unless another Service has taken them
// by now, and then added.
func reindex(m pmap.Map[FrontendKey, frontendRef], old, next *entry) pmap.Map[FrontendKey, frontendRef] {
	var before, after []*ServicePort
	var key string
	if old != nil {
		before, key = old.ports, old.key
	}
	if next != nil {
		after, key = next.ports, next.key
	}
	kept := func(i int) bool {
		return i < len(before) && i < len(after) && before[i].Name == after[i].Name && sameFrontends(before[i], after[i])
	}
	for i, p := range before {
		if kept(i) {
			continue
		}
		frontendsOf(p, func(k FrontendKey, _ FrontendKind) {
			if ref, ok := m.Get(k); ok && ref.key == key && int(ref.idx) == i {
				m = m.Delete(k)
			}
		})
	}
	for i, p := range after {
		if kept(i) {
			continue
		}
		frontendsOf(p, func(k FrontendKey, kind FrontendKind) {
			m = m.Set(k, frontendRef{key: key, idx: int32(i), kind: kind})
		})
	}
	return m
}

// Ports returns every service port sorted by name, then protocol. It
// allocates a new list on every call.
func (s *Snapshot) Ports() []*ServicePort {
	out := make([]*ServicePort, 0, s.Len())
	for p := range s.All() {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *ServicePort) int { return a.Name.Compare(b.Name) })
	return out
}
