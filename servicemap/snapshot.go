package servicemap

import (
	"iter"
	"slices"

	v1 "k8s.io/api/core/v1"

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
