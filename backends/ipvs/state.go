package ipvs

import (
	"net/netip"
	"slices"

	"github.com/lbkit/lbkit/servicemap"
)

// The plan kept between syncs: adding and taking out the contributions of
// single service ports, and noting what that changed.

// delta notes what an incremental update of a plan touched, with the state
// before it: a virtual server's desired state (nil: none), whether an
// address was bound, whether an element was in its set. What was touched
// but ends as it was is no change.
type delta struct {
	servers map[Key]*desired
	addrs   map[netip.Addr]bool
	elems   [numSets]map[string]bool
}

func newDelta() *delta {
	dl := &delta{servers: map[Key]*desired{}, addrs: map[netip.Addr]bool{}}
	for i := range dl.elems {
		dl.elems[i] = map[string]bool{}
	}
	return dl
}

// addPort adds pp's contribution to p; dl, when not nil, notes the change.
func (p *plan) addPort(pp *portPlan, dl *delta) {
	p.ports[pp.sp.Name] = pp
	for _, d := range pp.servers {
		k := d.vs.Key()
		dl.server(p, k)
		p.servers[k] = d
	}
	for _, a := range pp.bind {
		dl.addr(p, a)
		p.bind[a]++
	}
	for _, e := range pp.elems {
		dl.elem(p, e)
		p.sets[e.set][e.e]++
	}
}

// subPort takes pp's contribution out of p.
func (p *plan) subPort(pp *portPlan, dl *delta) {
	delete(p.ports, pp.sp.Name)
	for _, d := range pp.servers {
		k := d.vs.Key()
		dl.server(p, k)
		if p.servers[k] == d {
			delete(p.servers, k)
		}
	}
	for _, a := range pp.bind {
		dl.addr(p, a)
		if p.bind[a]--; p.bind[a] <= 0 {
			delete(p.bind, a)
		}
	}
	for _, e := range pp.elems {
		dl.elem(p, e)
		m := p.sets[e.set]
		if m[e.e]--; m[e.e] <= 0 {
			delete(m, e.e)
		}
	}
}

func (dl *delta) server(p *plan, k Key) {
	if dl == nil {
		return
	}
	if _, ok := dl.servers[k]; !ok {
		dl.servers[k] = p.servers[k]
	}
}

func (dl *delta) addr(p *plan, a netip.Addr) {
	if dl == nil {
		return
	}
	if _, ok := dl.addrs[a]; !ok {
		dl.addrs[a] = p.bind[a] > 0
	}
}

func (dl *delta) elem(p *plan, e elem) {
	if dl == nil {
		return
	}
	if _, ok := dl.elems[e.set][e.e]; !ok {
		dl.elems[e.set][e.e] = p.sets[e.set][e.e] > 0
	}
}

// update brings p from the snapshot it was built for to the next one:
// changed holds the service ports that changed, with their new version
// (nil for a removed one). The ports planned again are those, and those
// that win or lose a virtual server because of them (another port asked
// for the same address, port and protocol); their old contributions go
// out first, then their new ones come in. dl notes what changed.
func (p *plan) update(pl *planner, changed map[servicemap.ServicePortName]*servicemap.ServicePort, dl *delta) {
	type winner struct {
		name servicemap.ServicePortName
		ok   bool
	}
	before := map[Key]winner{}
	touch := func(k Key) {
		if _, ok := before[k]; !ok {
			o := p.owners[k]
			if len(o) > 0 {
				before[k] = winner{o[0], true}
			} else {
				before[k] = winner{}
			}
		}
	}
	names := make([]servicemap.ServicePortName, 0, len(changed))
	for n := range changed {
		names = append(names, n)
	}
	slices.SortFunc(names, servicemap.ServicePortName.Compare)
	claims := make(map[servicemap.ServicePortName][]Key, len(changed))
	for _, n := range names {
		if old := p.ports[n]; old != nil {
			for _, k := range old.claims {
				touch(k)
				p.disown(k, n)
			}
		}
		if sp := changed[n]; sp != nil {
			c := pl.claims(sp)
			claims[n] = c
			for _, k := range c {
				touch(k)
				p.own(k, n)
			}
		}
	}

	dirty := map[servicemap.ServicePortName]bool{}
	for _, n := range names {
		dirty[n] = true
	}
	for k, w := range before {
		o := p.owners[k]
		switch {
		case len(o) > 0 && (!w.ok || w.name != o[0]):
			dirty[o[0]] = true
			if w.ok {
				dirty[w.name] = true
			}
		case len(o) == 0 && w.ok:
			dirty[w.name] = true
		}
	}
	order := make([]servicemap.ServicePortName, 0, len(dirty))
	for n := range dirty {
		order = append(order, n)
	}
	slices.SortFunc(order, servicemap.ServicePortName.Compare)

	// Every old contribution goes before a new one comes: a virtual
	// server may move from one port to another.
	next := make([]*servicemap.ServicePort, 0, len(order))
	for _, n := range order {
		old := p.ports[n]
		sp, isChanged := changed[n]
		if !isChanged && old != nil {
			sp = old.sp
			claims[n] = old.claims
		}
		if old != nil {
			p.subPort(old, dl)
		}
		if sp != nil {
			next = append(next, sp)
		}
	}
	for _, sp := range next {
		p.addPort(pl.port(sp, claims[sp.Name]), dl)
	}
}

// own adds n to the ports asking for k, in name order.
func (p *plan) own(k Key, n servicemap.ServicePortName) {
	o := p.owners[k]
	i, found := slices.BinarySearchFunc(o, n, servicemap.ServicePortName.Compare)
	if !found {
		p.owners[k] = slices.Insert(o, i, n)
	}
}

// disown takes n out of the ports asking for k.
func (p *plan) disown(k Key, n servicemap.ServicePortName) {
	o := p.owners[k]
	i, found := slices.BinarySearchFunc(o, n, servicemap.ServicePortName.Compare)
	if !found {
		return
	}
	if o = slices.Delete(o, i, i+1); len(o) == 0 {
		delete(p.owners, k)
	} else {
		p.owners[k] = o
	}
}
