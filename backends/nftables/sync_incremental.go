//go:build linux

package nftables

import (
	"context"

	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/servicemap"
)

// portChange is one service port to bring from what the record says (old,
// nil when added) to what the snapshot says (new, nil when removed).
type portChange struct {
	name servicemap.ServicePortName
	old  *portRecord
	new  *portRules
}

// incrementalSync sends one transaction proportional to Diff(prev, next),
// computed against the record of what the last sync applied:
//
//	new and changed sets, then new chains, then changed chains (flush and
//	refill; an unchanged chain is left alone), then the elements whose
//	effective value changed (delete before add), then the chains no port
//	uses any more are flushed, and last the chains and sets that went away
//	are deleted.
func (b *Backend) incrementalSync(ctx context.Context, nft knftables.Interface, prev, next *servicemap.Snapshot) (int, error) {
	diff := servicemap.Diff(prev, next)
	rec := b.applied
	deferred := b.deferred
	b.deferred = nil
	if diff.Empty() && len(deferred) == 0 {
		rec.version = next.Version()
		return 0, nil
	}

	bld := newBuilder(next, b.opts)
	changes := make([]portChange, 0, len(diff.Added)+len(diff.Updated)+len(diff.Removed))
	for _, p := range diff.Added {
		changes = append(changes, portChange{name: p.Name, old: rec.ports[p.Name], new: bld.port(p)})
	}
	for _, u := range diff.Updated {
		changes = append(changes, portChange{name: u.New.Name, old: rec.ports[u.New.Name], new: bld.port(u.New)})
	}
	for _, p := range diff.Removed {
		if old := rec.ports[p.Name]; old != nil {
			changes = append(changes, portChange{name: p.Name, old: old})
		}
	}

	var o ops
	recreated := map[objectKey]bool{}
	// Sets: new ones, and static ones whose content changed.
	for _, c := range changes {
		if c.new == nil {
			continue
		}
		for i := range c.new.sets {
			s := &c.new.sets[i]
			was, ok := c.oldSet(s.name)
			if !ok || was.sum != setSum(s) {
				o.fillSet(s)
				recreated[objectKey{kindOf(s), s.name}] = true
			}
		}
	}
	// Chains: create new ones before any rule or element can point at them.
	for _, c := range changes {
		if c.new == nil {
			continue
		}
		for i := range c.new.chains {
			ch := &c.new.chains[i]
			if _, ok := c.oldChain(ch.name); !ok {
				o.addChain(ch)
				recreated[objectKey{"chain", ch.name}] = true
			}
		}
	}
	for _, c := range changes {
		if c.new == nil {
			continue
		}
		for i := range c.new.chains {
			ch := &c.new.chains[i]
			was, existed := c.oldChain(ch.name)
			switch {
			case !existed:
				o.rules(ch)
			case was.sum != chainSum(ch):
				o.flush(&knftables.Chain{Name: ch.name})
				o.rules(ch)
			}
		}
	}

	o = append(o, rec.updateElements(changes)...)

	// Objects that went away: flush the chains (dropping their references to
	// other chains and sets), then delete chains and sets.
	var deletes []deferredDelete
	for _, d := range deferred {
		if !recreated[objectKey{d.kind, d.name}] {
			deletes = append(deletes, d)
		}
	}
	for _, c := range changes {
		if c.old == nil {
			continue
		}
		for _, ch := range c.old.chains {
			if c.new == nil || !c.new.hasChain(ch.name) {
				o.flush(&knftables.Chain{Name: ch.name})
				deletes = append(deletes, deferredDelete{"chain", ch.name})
			}
		}
		for _, s := range c.old.sets {
			if c.new == nil || !c.new.hasSet(s.name) {
				deletes = append(deletes, deferredDelete{"set", s.name})
			}
		}
	}

	for _, c := range changes {
		if c.new == nil {
			delete(rec.ports, c.name)
		} else {
			rec.ports[c.name] = recordOf(c.new)
		}
	}
	rec.version = next.Version()
	return b.run(ctx, nft, o, deletes)
}

// updateElements moves element ownership from the changes' old records to
// their new rules, and returns the operations for the elements whose
// effective value changed, in a stable order: deletes of replaced or removed
// elements, then adds.
func (a *applied) updateElements(changes []portChange) ops {
	type before struct {
		value   string
		present bool
	}
	var order []elemID
	touched := map[elemID]before{}
	touch := func(id elemID) {
		if _, ok := touched[id]; !ok {
			v, ok := a.elems[id].effective()
			touched[id] = before{v, ok}
			order = append(order, id)
		}
	}
	for _, c := range changes {
		if c.old != nil {
			for _, e := range c.old.elems {
				id := e.id()
				touch(id)
				a.elems[id] = a.elems[id].without(c.name)
			}
		}
		if c.new != nil {
			for _, e := range c.new.elems {
				id := e.id()
				touch(id)
				a.elems[id] = a.elems[id].with(c.name, e.value)
			}
		}
	}
	var dels, adds ops
	for _, id := range order {
		was := touched[id]
		now, present := a.elems[id].effective()
		if !present {
			delete(a.elems, id)
		}
		if was.present == present && was.value == now {
			continue
		}
		if was.present {
			dels.delete(element{in: id.in, key: id.key}.object())
		}
		if present {
			adds.add(element{id.in, id.key, now}.object())
		}
	}
	return append(dels, adds...)
}

func (c *portChange) oldChain(name string) (objectRecord, bool) {
	if c.old == nil {
		return objectRecord{}, false
	}
	return find(c.old.chains, name)
}

func (c *portChange) oldSet(name string) (objectRecord, bool) {
	if c.old == nil {
		return objectRecord{}, false
	}
	return find(c.old.sets, name)
}

func (pr *portRules) hasChain(name string) bool {
	for i := range pr.chains {
		if pr.chains[i].name == name {
			return true
		}
	}
	return false
}

func (pr *portRules) hasSet(name string) bool {
	for i := range pr.sets {
		if pr.sets[i].name == name {
			return true
		}
	}
	return false
}
