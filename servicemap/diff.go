package servicemap

import (
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/endpoints"
)

// Changes is the difference between two snapshots: what a data plane must
// add, replace and remove to go from one to the other, and which UDP
// conntrack flows went stale on the way.
type Changes struct {
	// From and To are the versions of the two snapshots.
	From, To uint64
	// Added, Updated and Removed are sorted by service port name.
	Added   []*ServicePort
	Updated []Update
	Removed []*ServicePort

	// StaleServices are UDP service ports whose addresses may hold stale
	// conntrack flows: ports that were removed (the From version of the
	// port), and ports that now have endpoints where they had none (the To
	// version: flows created while packets were rejected were not DNATed,
	// and would keep a client that reuses its source port from reaching the
	// new endpoints).
	StaleServices []*ServicePort
	// ServiceCIDRsChanged reports that the service ranges changed; then
	// ServiceCIDRs holds To's (see Snapshot.ServiceCIDRs).
	ServiceCIDRsChanged bool
	ServiceCIDRs        []netip.Prefix

	// StaleEndpoints are UDP endpoints that a service port sent traffic to in
	// From and no longer does in To (removed, no longer serving, or no longer
	// chosen by topology or traffic policy). Flows from the port's addresses
	// to them must be deleted.
	StaleEndpoints []StaleEndpoint
}

// Update is one service port that changed.
type Update struct{ Old, New *ServicePort }

// EndpointChange is one endpoint whose conditions, node, zone or hints
// changed between two versions of a service port.
type EndpointChange struct{ Old, New endpoints.Endpoint }

// EndpointChanges compares the endpoints of Old and New (both sorted by
// address): those only New has, those only Old had, and those in both that
// changed. A consumer that keeps state per endpoint (connection counts,
// affinity entries, hash rings) updates it from these, at the cost of one
// pass over the two lists.
func (u Update) EndpointChanges() (added, removed []endpoints.Endpoint, changed []EndpointChange) {
	a, b := u.Old.Endpoints, u.New.Endpoints
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].Addr.Compare(b[j].Addr) < 0):
			removed = append(removed, a[i])
			i++
		case i == len(a) || b[j].Addr.Compare(a[i].Addr) < 0:
			added = append(added, b[j])
			j++
		default:
			if !a[i].Equal(b[j]) {
				changed = append(changed, EndpointChange{Old: a[i], New: b[j]})
			}
			i++
			j++
		}
	}
	return added, removed, changed
}

// StaleEndpoint is an endpoint that a UDP service port no longer uses.
type StaleEndpoint struct {
	// Service is the port as it was in the From snapshot: its addresses are
	// the destinations of the stale flows.
	Service  *ServicePort
	Endpoint netip.AddrPort
}

// Empty reports whether nothing changed.
func (c *Changes) Empty() bool {
	return len(c.Added) == 0 && len(c.Updated) == 0 && len(c.Removed) == 0 && !c.ServiceCIDRsChanged
}

// Diff returns the changes that take prev to next. A nil prev means an empty
// snapshot, so Diff(nil, next) lists everything as added. Its cost is
// proportional to the number of services that changed between the two,
// provided next was derived from prev (by the same Tracker).
func Diff(prev, next *Snapshot) Changes {
	c := Changes{From: prev.Version(), To: next.Version()}
	var a, b *trieNode
	if prev != nil {
		a = prev.root
	}
	if next != nil {
		b = next.root
	}
	if !slices.Equal(prev.ServiceCIDRs(), next.ServiceCIDRs()) {
		c.ServiceCIDRsChanged, c.ServiceCIDRs = true, next.ServiceCIDRs()
	}
	trieDiff(a, b, 0, func(old, new *entry) {
		var op, np []*ServicePort
		if old != nil {
			op = old.ports
		}
		if new != nil {
			np = new.ports
		}
		diffPorts(&c, op, np)
	})
	byName := func(a, b *ServicePort) int { return a.Name.Compare(b.Name) }
	slices.SortFunc(c.Added, byName)
	slices.SortFunc(c.Removed, byName)
	slices.SortFunc(c.Updated, func(a, b Update) int { return a.New.Name.Compare(b.New.Name) })
	slices.SortFunc(c.StaleServices, byName)
	slices.SortFunc(c.StaleEndpoints, func(a, b StaleEndpoint) int {
		if n := a.Service.Name.Compare(b.Service.Name); n != 0 {
			return n
		}
		return a.Endpoint.Compare(b.Endpoint)
	})
	return c
}

// diffPorts compares the ports of one service; both lists are sorted by name.
func diffPorts(c *Changes, old, new []*ServicePort) {
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || (i < len(old) && old[i].Name.Compare(new[j].Name) < 0):
			c.Removed = append(c.Removed, old[i])
			if old[i].Protocol == v1.ProtocolUDP {
				c.StaleServices = append(c.StaleServices, old[i])
			}
			i++
		case i == len(old) || new[j].Name.Compare(old[i].Name) < 0:
			c.Added = append(c.Added, new[j])
			j++
		default:
			if old[i] != new[j] && !old[i].Equal(new[j]) {
				c.Updated = append(c.Updated, Update{Old: old[i], New: new[j]})
				if new[j].Protocol == v1.ProtocolUDP {
					staleUDP(c, old[i], new[j])
				}
			}
			i++
			j++
		}
	}
}

// staleUDP records what conntrack must forget when a UDP port changes.
func staleUDP(c *Changes, old, new *ServicePort) {
	oldUsed, newUsed := old.UsedEndpoints(), new.UsedEndpoints()
	for _, ep := range oldUsed {
		if !containsAddr(newUsed, ep.Addr) {
			c.StaleEndpoints = append(c.StaleEndpoints, StaleEndpoint{Service: old, Endpoint: ep.Addr})
		}
	}
	if len(oldUsed) == 0 && len(newUsed) > 0 {
		c.StaleServices = append(c.StaleServices, new)
	}
}

func containsAddr(eps []endpoints.Endpoint, a netip.AddrPort) bool {
	_, found := slices.BinarySearchFunc(eps, a, func(ep endpoints.Endpoint, a netip.AddrPort) int {
		return ep.Addr.Compare(a)
	})
	return found
}

// Apply returns the snapshot that results from applying c to prev: the
// inverse of Diff, Apply(prev, Diff(prev, next)) holds the same ports as
// next. It exists to prove Diff exact and for consumers that receive changes
// rather than snapshots. The result takes the version c.To and prev's node
// and family (or those of the ports, when prev is nil).
func Apply(prev *Snapshot, c Changes) *Snapshot {
	next := &Snapshot{version: c.To, frontends: newFrontendMap()}
	if prev != nil {
		next.node, next.family, next.root, next.ports = prev.node, prev.family, prev.root, prev.ports
		next.frontends, next.serviceCIDRs = prev.frontends, prev.serviceCIDRs
	}
	if c.ServiceCIDRsChanged {
		next.serviceCIDRs = c.ServiceCIDRs
	}
	touched := map[string][]*ServicePort{}
	load := func(p *ServicePort) []*ServicePort {
		key := p.Name.ServiceName()
		ports, ok := touched[key]
		if !ok {
			if e := trieGet(next.root, key); e != nil {
				ports = slices.Clone(e.ports)
			}
		}
		return ports
	}
	for _, p := range c.Removed {
		ports := load(p)
		ports = slices.DeleteFunc(ports, func(q *ServicePort) bool { return q.Name == p.Name })
		touched[p.Name.ServiceName()] = ports
	}
	upsert := func(p *ServicePort) {
		ports := load(p)
		ports = slices.DeleteFunc(ports, func(q *ServicePort) bool { return q.Name == p.Name })
		ports = append(ports, p)
		slices.SortFunc(ports, func(a, b *ServicePort) int { return a.Name.Compare(b.Name) })
		touched[p.Name.ServiceName()] = ports
	}
	for _, p := range c.Added {
		upsert(p)
	}
	for _, u := range c.Updated {
		upsert(u.New)
	}
	for key, ports := range touched {
		old := trieGet(next.root, key)
		if old != nil {
			next.ports -= len(old.ports)
		}
		var e *entry
		if len(ports) > 0 {
			e = &entry{key: key, ports: ports}
			next.ports += len(ports)
		}
		next.root = trieSet(next.root, key, e)
		next.frontends = reindex(next.frontends, old, e)
	}
	return next
}
