//go:build linux

package ipvs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/servicemap"
)

// incrementalSync applies c, the changes from the snapshot last applied,
// to the plan last applied and to the kernel, trusting that the kernel
// holds that plan: it asks the kernel about nothing it does not change,
// but the real servers of the virtual servers it changes and of those
// still draining. It returns a nil syncState, and changes nothing, when a
// full sync is needed instead: the node's addresses changed.
//
// The steps and their order are those of fullSync, limited to what
// changed: the nftables elements that come and go, the addresses whose
// last or first user changed, the virtual servers of the service ports
// that changed (and of those that win or lose a virtual server because of
// them), and the record of the node-address servers deleted.
func (b *Backend) incrementalSync(ctx context.Context, nft knftables.Interface, last *applied, c *servicemap.Changes) (*syncState, error) {
	o := &b.spec
	p := last.plan
	nodeIPs, local, err := b.nodeAddrs(p.fam)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(nodeIPs, p.nodeIPs) || !sameSet(local, p.local) {
		return nil, nil
	}

	changed := make(map[servicemap.ServicePortName]*servicemap.ServicePort, len(c.Added)+len(c.Updated)+len(c.Removed))
	for _, sp := range c.Removed {
		changed[sp.Name] = nil
	}
	for _, u := range c.Updated {
		changed[u.New.Name] = u.New
	}
	for _, sp := range c.Added {
		changed[sp.Name] = sp
	}
	if o.SchedulerFor != nil {
		// A new scheduler comes without a change of the snapshot.
		for n, pp := range p.ports {
			if _, ok := changed[n]; !ok && pp.sched != "" && o.scheduler(n, b.opts.Logger) != pp.sched {
				changed[n] = pp.sp
			}
		}
	}
	dl := newDelta()
	p.update(newPlanner(p.fam, o, b.opts.Logger, p.nodeIPs, p.local, p.owners), changed, dl)
	st := &syncState{plan: p, draining: map[Key]bool{}}

	// 1. netfilter: deletions first (an interval that replaces an
	// overlapping one is then not refused), but those from the record.
	tx := nft.NewTransaction()
	var forget []string
	for id := range numSets {
		for _, e := range sortedKeys(dl.elems[id]) {
			if dl.elems[id][e] && p.sets[id][e] == 0 {
				if id == setNodeAddrServers {
					forget = append(forget, e)
					continue
				}
				tx.Delete(element(id, e))
				st.changes++
			}
		}
	}
	for id := range numSets {
		for _, e := range sortedKeys(dl.elems[id]) {
			if !dl.elems[id][e] && p.sets[id][e] > 0 {
				tx.Add(element(id, e))
				st.changes++
			}
		}
	}
	if tx.NumOperations() > 0 {
		if err := nft.Run(ctx, tx); err != nil {
			return nil, fmt.Errorf("nftables: %w", err)
		}
	}

	// 2. Addresses, then virtual and real servers.
	var errs []error
	fail := func(err error) { errs = append(errs, err) }
	ifname := o.Interface
	addrs := sortedAddrs(dl.addrs)
	for _, a := range addrs {
		if !dl.addrs[a] && p.bind[a] > 0 {
			st.changes++
			if err := b.host.AddLinkAddr(ifname, a); err != nil {
				fail(fmt.Errorf("add %v to %s: %w", a, ifname, err))
			}
		}
	}
	for k := range last.draining {
		if _, ok := dl.servers[k]; !ok {
			dl.servers[k] = p.servers[k]
		}
	}
	keys := sortedKeysOf(dl.servers)
	for _, k := range keys {
		was, d := dl.servers[k], p.servers[k]
		switch {
		case d == nil:
			continue // deleted below
		case was == nil:
			b.addOrAdopt(d, st, fail)
			continue
		case !was.vs.sameConfig(d.vs):
			st.changes++
			if err := b.ipvs.UpdateVirtualServer(d.vs); err != nil {
				fail(fmt.Errorf("update virtual server %v: %w", k, err))
			}
		case was.equal(d) && !last.draining[k]:
			continue
		}
		if err := b.reconcileReals(d, st); err != nil {
			fail(err)
		}
	}

	// 3. Virtual servers no longer wanted (lbkit's: each was on a bound
	// address or in the record), then addresses.
	gone := map[string]bool{}
	for _, k := range keys {
		if was := dl.servers[k]; was != nil && p.servers[k] == nil {
			st.changes++
			if err := b.ipvs.DeleteVirtualServer(was.vs); err != nil {
				fail(fmt.Errorf("delete virtual server %v: %w", k, err))
				continue
			}
			gone[keyElement(k)] = true
		}
	}
	for _, a := range addrs {
		if dl.addrs[a] && p.bind[a] == 0 {
			st.changes++
			if err := b.host.DeleteLinkAddr(ifname, a); err != nil {
				fail(fmt.Errorf("delete %v from %s: %w", a, ifname, err))
			}
		}
	}

	// 4. The record of the node-address servers that are gone.
	forget = slices.DeleteFunc(forget, func(e string) bool { return !gone[e] })
	if err := b.forget(ctx, nft, forget, st); err != nil {
		fail(err)
	}
	return st, errors.Join(errs...)
}

// addOrAdopt adds a virtual server new to the plan. One that the kernel
// has already (another program's, on a node address and port this service
// now uses) is taken over, as a full sync would: updated, its real servers
// reconciled.
func (b *Backend) addOrAdopt(d *desired, st *syncState, fail func(error)) {
	k := d.vs.Key()
	st.changes++
	err := b.ipvs.AddVirtualServer(d.vs)
	if err == nil {
		b.addReals(d, st, fail)
		return
	}
	if _, lerr := b.ipvs.RealServers(d.vs); lerr != nil {
		fail(fmt.Errorf("add virtual server %v: %w", k, err))
		return
	}
	st.changes++
	if err := b.ipvs.UpdateVirtualServer(d.vs); err != nil {
		fail(fmt.Errorf("update virtual server %v: %w", k, err))
	}
	if err := b.reconcileReals(d, st); err != nil {
		fail(err)
	}
}

func sameSet(a, b map[netip.Addr]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
