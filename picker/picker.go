package picker

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/internal/pmap"
	"github.com/lbkit/lbkit/servicemap"
)

// ErrNotFound is returned by the Pick methods for a service port or
// frontend the picker's snapshot does not hold.
var ErrNotFound = errors.New("picker: no such service port or frontend")

// Options configure a Picker. The zero value picks round robin, knows no
// pod CIDRs and no node addresses, and reads time.Now for affinity.
type Options struct {
	// Policy is the balancing policy of every service port; PolicyFor,
	// when set, chooses per port instead.
	Policy    Policy
	PolicyFor func(servicemap.ServicePortName) Policy
	// PodCIDRs and NodeIPs classify a request's client as one of the
	// cluster's pods or as this node, which matters for
	// externalTrafficPolicy Local (see backends.PortPlan). Without PodCIDRs
	// no client counts as a pod.
	PodCIDRs []netip.Prefix
	NodeIPs  []netip.Addr
	// Now is the clock of ClientIP session affinity; nil means time.Now.
	Now func() time.Time
	// AffinityEntries bounds each service port's affinity table (see
	// affinity.Options.MaxEntries).
	AffinityEntries int
}

// Picker chooses endpoints for new connections or requests to the service
// ports of a snapshot, with the same decisions as lbkit's kernel backends
// (backends.PortPlan): topology, traffic policies, terminating fallback,
// REJECT versus DROP, source ranges and ClientIP session affinity.
//
// Pick and its variants are safe for concurrent use and take no lock
// (except the affinity table of a port with session affinity) and allocate
// nothing. Update and Run change the snapshot the picker follows; a Pick
// running concurrently sees each service port either before or after the
// change.
type Picker struct {
	opts  Options
	state atomic.Pointer[state]
	mu    sync.Mutex // serialises Update
}

// state is one immutable version of what the picker serves. Addresses
// are looked up in the snapshot's own index, which gives every frontend
// one owner.
type state struct {
	snap  *servicemap.Snapshot
	ports pmap.Map[servicemap.ServicePortName, *portPicker]
}

// frontend returns the picker of the port reached at addr over proto (not
// a node port) and the kind of address, or nil.
func (s *state) frontend(proto v1.Protocol, addr netip.AddrPort) (*portPicker, backends.Frontend) {
	sp, kind := s.snap.Frontend(proto, addr)
	if sp == nil {
		return nil, 0
	}
	pp, _ := s.ports.Get(sp.Name)
	return pp, kind
}

// nodePort returns the picker of the port with node port port, or nil.
func (s *state) nodePort(proto v1.Protocol, port uint16) *portPicker {
	sp := s.snap.NodePort(proto, port)
	if sp == nil {
		return nil
	}
	pp, _ := s.ports.Get(sp.Name)
	return pp
}

// New returns a picker for snap (which may be nil: nothing to pick).
func New(snap *servicemap.Snapshot, opts Options) *Picker {
	p := &Picker{opts: opts}
	s := &state{ports: pmap.New[servicemap.ServicePortName, *portPicker](hashName)}
	p.state.Store(s)
	p.Update(snap)
	return p
}

// Snapshot returns the snapshot the picker currently follows.
func (p *Picker) Snapshot() *servicemap.Snapshot { return p.state.Load().snap }

// Update makes the picker follow next. Its cost is proportional to what
// changed since the snapshot it followed (servicemap.Diff): pickers of
// unchanged ports are kept, and endpoints that stay in a changed port keep
// their in-flight counts and affinity entries. Clients stuck to an endpoint
// that is gone are re-picked on their next connection.
func (p *Picker) Update(next *servicemap.Snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.state.Load()
	if next == cur.snap {
		return
	}
	c := servicemap.Diff(cur.snap, next)
	s := &state{snap: next, ports: cur.ports}
	for _, sp := range c.Removed {
		s.ports = s.ports.Delete(sp.Name)
	}
	add := func(sp *servicemap.ServicePort) {
		old, _ := s.ports.Get(sp.Name)
		s.ports = s.ports.Set(sp.Name, newPortPicker(sp, p.policy(sp.Name), old, p.opts.AffinityEntries))
	}
	for _, sp := range c.Added {
		add(sp)
	}
	for _, u := range c.Updated {
		add(u.New)
	}
	p.state.Store(s)
}

func (p *Picker) policy(name servicemap.ServicePortName) Policy {
	if p.opts.PolicyFor != nil {
		return p.opts.PolicyFor(name)
	}
	return p.opts.Policy
}

// hashName hashes a port's namespace, service and port name. Port names
// are unique within a Service, so the protocol would tell no two keys
// apart: it is left out (equal keys still compare it).
func hashName(n servicemap.ServicePortName) uint64 {
	h := pmap.String(pmap.Offset, n.Namespace)
	h = pmap.String(pmap.Byte(h, '/'), n.Name)
	h = pmap.String(pmap.Byte(h, ':'), n.Port)
	return pmap.Finalize(h)
}

// source tells whether a request comes from one of the cluster's pods,
// this node, or neither.
func (p *Picker) source(req Request) backends.Source {
	client := req.Client
	if req.FromNode {
		return backends.FromNode
	}
	if len(p.opts.NodeIPs) == 0 && len(p.opts.PodCIDRs) == 0 {
		return backends.FromOutside
	}
	client = client.Unmap()
	switch {
	case !client.IsValid():
		return backends.FromOutside
	case slices.Contains(p.opts.NodeIPs, client):
		return backends.FromNode
	case slices.ContainsFunc(p.opts.PodCIDRs, func(c netip.Prefix) bool { return c.Contains(client) }):
		return backends.FromPod
	}
	return backends.FromOutside
}
