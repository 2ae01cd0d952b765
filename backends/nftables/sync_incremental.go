//go:build linux

package nftables

import (
	"context"
	"fmt"

	"github.com/lbkit/lbkit/servicemap"
)

// portChange is one service port to bring from what the record says (old,
// nil when added) to what the snapshot says (new, nil when removed).
type portChange struct {
	name servicemap.ServicePortName
	old  *portRecord
	new  *portRules
}

// incrementalSync sends, to each table whose ports changed, one
// transaction proportional to its part of Diff(prev, next) (see syncShard).
// Tables are independent: a failure stops the sync, and the next one is
// full.
func (b *Backend) incrementalSync(ctx context.Context, prev, next *servicemap.Snapshot, diff *servicemap.Changes) (int, error) {
	if diff == nil {
		d := servicemap.Diff(prev, next)
		diff = &d
	}
	bld := newBuilder(next, b.spec)
	byShard := make([][]portChange, len(b.shards))
	change := func(name servicemap.ServicePortName, p *servicemap.ServicePort) {
		i := shardOf(name, len(b.shards))
		c := portChange{name: name, old: b.shards[i].rec.ports[name]}
		if p != nil {
			c.new = bld.port(p)
		} else if c.old == nil {
			return
		}
		byShard[i] = append(byShard[i], c)
	}
	for _, p := range diff.Added {
		change(p.Name, p)
	}
	for _, u := range diff.Updated {
		change(u.New.Name, u.New)
	}
	for _, p := range diff.Removed {
		change(p.Name, nil)
	}
	var skel *skeleton
	total := 0
	for i, sh := range b.shards {
		if len(byShard[i]) == 0 && len(sh.deferred) == 0 {
			continue
		}
		if skel == nil {
			s := bld.skeleton()
			skel = &s
		}
		n, err := b.syncShard(ctx, sh, skel, byShard[i])
		total += n
		if err != nil {
			return total, fmt.Errorf("table %s: %w", sh.table, err)
		}
	}
	return total, nil
}

// syncShard brings one table through changes in one transaction, computed
// against the record of what the last sync applied:
//
//	the table's skeleton if the table is new, then new and changed sets,
//	then new chains, then changed chains (flush and refill; an unchanged
//	chain is left alone), then the elements whose effective value changed
//	(delete before add), then the chains no port uses any more are flushed,
//	and last the chains and sets that went away are deleted.
//
// A table left without ports is deleted instead.
func (b *Backend) syncShard(ctx context.Context, sh *shard, skel *skeleton, changes []portChange) (int, error) {
	rec := sh.rec
	deferred := sh.deferred
	sh.deferred = nil
	remaining := len(rec.ports)
	for _, c := range changes {
		switch {
		case c.old == nil && c.new != nil:
			remaining++
		case c.old != nil && c.new == nil:
			remaining--
		}
	}
	if remaining == 0 {
		sh.rec = newApplied(0)
		if err := b.deleteTable(ctx, b.fam, sh.table); err != nil {
			return 0, err
		}
		return 1, nil
	}

	var o ops
	if len(rec.ports) == 0 {
		o = setupOps(skel)
	}
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
				o.chainOp(opFlush, ch)
				o.rules(ch)
			}
		}
	}

	o = append(o, rec.updateElements(skel, changes)...)

	// Objects that went away: flush the chains (dropping their references to
	// other chains and sets), then delete chains and sets.
	var deletes []deferredDelete
	for _, d := range deferred {
		if !recreated[objectKey(d)] {
			deletes = append(deletes, d)
		}
	}
	for _, c := range changes {
		if c.old == nil {
			continue
		}
		for _, ch := range c.old.chains {
			if c.new == nil || !c.new.hasChain(ch.name) {
				o.chainNamed(opFlush, ch.name)
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
	return b.run(ctx, sh, o, deletes)
}

// updateElements moves element ownership from the changes' old records to
// their new rules, and returns the operations for the elements whose
// effective value changed, in a stable order: deletes of replaced or removed
// elements, then adds.
func (a *applied) updateElements(skel *skeleton, changes []portChange) ops {
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
			dels.elem(opDelete, &skel.containers[id.in], id.key, "")
		}
		if present {
			adds.elem(opAdd, &skel.containers[id.in], id.key, now)
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
