package picker

import (
	"net/netip"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/internal/pmap"
	"github.com/lbkit/lbkit/servicemap"
)

// Request describes a new connection or request.
type Request struct {
	// Client is the client's address: the key of ClientIP session
	// affinity, the source checked against load-balancer source ranges,
	// and (with Options.PodCIDRs and NodeIPs) whether the client is a pod
	// or this node.
	Client netip.Addr
	// Frontend is the kind of address the client used; Pick takes it
	// from here (the zero value is the cluster IP), PickFrontend and
	// PickNodePort from their arguments. Cluster-IP traffic follows the
	// internal traffic policy, the others the external one.
	Frontend backends.Frontend
	// Key is the consistent-hashing key of the Maglev policy (a hash of a
	// header, a session id...). Zero hashes Client instead.
	Key uint64
	// FromNode says the request comes from this node itself, whatever
	// Options.NodeIPs hold (a proxy knows its local addresses best: a
	// connection from the node to one of its virtual addresses carries
	// that address as its source).
	FromNode bool
}

// Result is the outcome of a Pick.
type Result struct {
	// Verdict is Forward when Endpoint was chosen; Reject (no usable
	// endpoint anywhere: refuse the connection) or Drop (none this traffic
	// may use here, or the client is outside the source ranges) otherwise,
	// with the meaning the kernel backends give them.
	Verdict backends.Verdict
	// Endpoint is the chosen endpoint when Verdict is Forward, nil
	// otherwise. It is shared with the snapshot and MUST NOT be modified.
	Endpoint *endpoints.Endpoint
	// Firewalled reports a Drop because the client is outside the
	// load balancer's source ranges.
	Firewalled bool
	state      *endpointState
}

// Addr returns the chosen endpoint's address and port (the zero AddrPort
// when none was chosen).
func (r Result) Addr() netip.AddrPort {
	if r.Endpoint == nil {
		return netip.AddrPort{}
	}
	return r.Endpoint.Addr
}

// Done releases the request, for the LeastRequest policy's in-flight
// counts. Call it once per forwarded Result when the connection or request
// ends; it does nothing for other policies and verdicts.
func (r Result) Done() {
	if r.state != nil {
		r.state.active.Add(-1)
	}
}

// Pick chooses an endpoint of the service port name for req.
func (p *Picker) Pick(name servicemap.ServicePortName, req Request) (Result, error) {
	pp, ok := p.state.Load().ports.Get(name)
	if !ok {
		return Result{}, ErrNotFound
	}
	return p.pick(pp, req), nil
}

// PickFrontend chooses an endpoint for a connection to addr (a cluster IP,
// external IP or load-balancer IP with the service port) over proto.
func (p *Picker) PickFrontend(proto v1.Protocol, addr netip.AddrPort, req Request) (Result, error) {
	pp, kind := p.state.Load().frontend(proto, addr)
	if pp == nil {
		return Result{}, ErrNotFound
	}
	req.Frontend = kind
	return p.pick(pp, req), nil
}

// PickNodePort chooses an endpoint for a connection to a node port.
func (p *Picker) PickNodePort(proto v1.Protocol, port uint16, req Request) (Result, error) {
	pp := p.state.Load().nodePort(proto, port)
	if pp == nil {
		return Result{}, ErrNotFound
	}
	req.Frontend = backends.FrontendNodePort
	return p.pick(pp, req), nil
}

// DecideFrontend returns the decision for req to addr over proto (as
// PickFrontend would make it) without choosing an endpoint: which list the
// request may use, or why it may not. A proxy uses it to check that an
// established flow's endpoint is still one the request may reach.
func (p *Picker) DecideFrontend(proto v1.Protocol, addr netip.AddrPort, req Request) (backends.Decision, error) {
	pp, kind := p.state.Load().frontend(proto, addr)
	if pp == nil {
		return backends.Decision{}, ErrNotFound
	}
	req.Frontend = kind
	return p.decide(pp, req), nil
}

// DecideNodePort is DecideFrontend for a node port.
func (p *Picker) DecideNodePort(proto v1.Protocol, port uint16, req Request) (backends.Decision, error) {
	pp := p.state.Load().nodePort(proto, port)
	if pp == nil {
		return backends.Decision{}, ErrNotFound
	}
	req.Frontend = backends.FrontendNodePort
	return p.decide(pp, req), nil
}

func (p *Picker) decide(pp *portPicker, req Request) backends.Decision {
	return pp.plan.Decide(backends.Connection{
		Frontend:  req.Frontend,
		From:      p.source(req),
		PodsKnown: len(p.opts.PodCIDRs) > 0,
		Addr:      req.Client,
	})
}

func (p *Picker) pick(pp *portPicker, req Request) Result {
	var res Result
	local := false
	if req.Frontend == backends.FrontendClusterIP {
		// The internal route whatever the source: what Decide would say,
		// without classifying the client (only masquerade depends on it).
		res.Verdict, local = pp.plan.Internal.Verdict, pp.plan.Internal.Local
	} else {
		d := p.decide(pp, req)
		res.Verdict, res.Firewalled, local = d.Verdict, d.Firewalled, d.Local
	}
	if res.Verdict != backends.Forward {
		return res
	}
	l := pp.cluster
	if local {
		l = pp.local
	}
	i := -1
	var now time.Time
	if pp.sticky != nil && req.Client.IsValid() {
		now = p.now()
		if ep, ok := pp.sticky.Lookup(req.Client, now, time.Duration(pp.plan.AffinitySeconds)*time.Second); ok {
			if j, ok := l.at[ep]; ok {
				i = j
			}
		}
	}
	if i < 0 {
		key := req.Key
		if key == 0 && pp.policy == Maglev {
			key = hashAddr(req.Client)
		}
		i = l.bal.choose(key)
		if pp.sticky != nil && req.Client.IsValid() {
			pp.sticky.Set(req.Client, l.eps[i].Addr, now)
		}
	}
	res.Endpoint = &l.eps[i]
	if pp.policy == LeastRequest {
		res.state = l.states[i]
		res.state.active.Add(1)
	}
	return res
}

func (p *Picker) now() time.Time {
	if p.opts.Now != nil {
		return p.opts.Now()
	}
	return time.Now()
}

func hashAddr(a netip.Addr) uint64 {
	b := a.As16()
	h := pmap.Offset
	for _, c := range b {
		h = pmap.Byte(h, c)
	}
	return pmap.Finalize(h)
}
