package picker

import (
	"net/netip"

	"github.com/lbkit/lbkit/affinity"
	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
)

// portPicker chooses endpoints for one service port. It is immutable once
// built, except for the counters and tables its balancers and affinity
// share between goroutines.
type portPicker struct {
	plan   backends.PortPlan
	policy Policy
	// cluster and local serve the plan's Cluster and Local lists; nil
	// when the list is.
	cluster, local *list
	// states holds the state of every endpoint in either list.
	states map[netip.AddrPort]*endpointState
	// sticky is the ClientIP affinity table; nil without affinity.
	sticky *affinity.Table[netip.Addr, netip.AddrPort]
}

// list is one endpoint list and its balancer.
type list struct {
	eps    []endpoints.Endpoint
	states []*endpointState
	// at maps an address to its index, for affinity hits.
	at  map[netip.AddrPort]int
	bal balancer
}

// newPortPicker builds the picker of p. old is the picker of the same port
// before an update, or nil: endpoints that stay keep their state, and the
// affinity table (with its entries) is kept while the port has affinity.
func newPortPicker(p *servicemap.ServicePort, policy Policy, old *portPicker, affinityEntries int) *portPicker {
	pp := &portPicker{plan: backends.Plan(p), policy: policy}
	pp.states = make(map[netip.AddrPort]*endpointState, len(pp.plan.Cluster)+len(pp.plan.Local))
	state := func(a netip.AddrPort) *endpointState {
		if s := pp.states[a]; s != nil {
			return s
		}
		var s *endpointState
		if old != nil {
			s = old.states[a]
		}
		if s == nil {
			s = new(endpointState)
		}
		pp.states[a] = s
		return s
	}
	pp.cluster = newList(pp.plan.Cluster, policy, state)
	pp.local = newList(pp.plan.Local, policy, state)
	if pp.plan.AffinitySeconds > 0 {
		if old != nil && old.sticky != nil {
			pp.sticky = old.sticky
		} else {
			pp.sticky = affinity.NewTable[netip.Addr, netip.AddrPort](affinity.Options{MaxEntries: affinityEntries})
		}
	}
	return pp
}

func newList(eps []endpoints.Endpoint, policy Policy, state func(netip.AddrPort) *endpointState) *list {
	if len(eps) == 0 {
		return nil
	}
	l := &list{
		eps:    eps,
		states: make([]*endpointState, len(eps)),
		at:     make(map[netip.AddrPort]int, len(eps)),
	}
	for i := range eps {
		l.states[i] = state(eps[i].Addr)
		l.at[eps[i].Addr] = i
	}
	switch policy {
	case Random:
		l.bal = random{n: uint64(len(eps))}
	case LeastRequest:
		l.bal = leastRequest{states: l.states}
	case Maglev:
		addrs := make([]netip.AddrPort, len(eps))
		for i := range eps {
			addrs[i] = eps[i].Addr
		}
		l.bal = maglev{table: buildMaglev(addrs)}
	default:
		l.bal = newRoundRobin(len(eps))
	}
	return l
}
