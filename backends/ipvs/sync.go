//go:build linux

package ipvs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/servicemap"
)

// syncState is the outcome of one sync.
type syncState struct {
	plan     *plan
	draining map[Key]bool
	changes  int // kernel objects added, updated or deleted
}

// sync applies next. last is the record of the previous sync when prev
// was the snapshot it applied, nil for a full sync.
//
// The order keeps traffic flowing and ownership provable at every step:
//  1. one nftables transaction with every change of the sets (on a full
//     sync the whole table), except that the record of virtual servers on
//     node addresses only grows here: it names those about to be created;
//  2. addresses on the dummy link, then virtual and real servers;
//  3. virtual servers lbkit owns but no longer wants, then their
//     addresses;
//  4. the record of the virtual servers on node addresses now gone.
func (b *Backend) sync(ctx context.Context, nft knftables.Interface, fam family, last *applied, next *servicemap.Snapshot) (*syncState, error) {
	o := &b.opts
	if last == nil {
		for _, s := range sysctls {
			if err := b.host.SetSysctl(s.name, s.value); err != nil {
				return nil, fmt.Errorf("sysctl %s=%s: %w", s.name, s.value, err)
			}
		}
	}
	if err := b.host.EnsureDummy(o.Interface); err != nil {
		return nil, fmt.Errorf("link %s: %w", o.Interface, err)
	}
	local, err := b.host.NodeAddrs(o.Interface)
	if err != nil {
		return nil, fmt.Errorf("node addresses: %w", err)
	}
	nodeIPs := o.NodeIPs
	if len(nodeIPs) == 0 {
		nodeIPs = local
	}
	p := buildPlan(next, o, usableNodeIPs(fam, nodeIPs, o.NodePortAddresses), toSet(append(local, o.NodeIPs...)))
	st := &syncState{plan: p, draining: map[Key]bool{}}

	// 1. netfilter: everything but the deletions from the record. Within
	// the transaction deletions come first, so an interval that replaces
	// an overlapping one (a narrowed source range) is not refused.
	var before *[numSets]map[string]bool
	recorded := map[Key]bool{}
	tx := nft.NewTransaction()
	if last == nil {
		rec, err := readRecord(ctx, nft)
		if err != nil {
			return nil, err
		}
		recorded = rec
		skeleton(tx, fam, o.MasqueradeMark)
		// The record keeps what it had until those servers are gone.
		for k := range recorded {
			tx.Add(&knftables.Element{Set: setSpecs[setNodeAddrServers].name, Key: []string{keyElement(k)}})
		}
	} else {
		before = &last.plan.sets
		for _, d := range last.plan.servers {
			if d.node {
				recorded[d.vs.Key()] = true
			}
		}
		st.changes += deleteElements(tx, before, &p.sets, func(id setID, _ string) bool { return id == setNodeAddrServers })
	}
	st.changes += addElements(tx, before, &p.sets)
	if tx.NumOperations() > 0 {
		if err := nft.Run(ctx, tx); err != nil {
			return nil, fmt.Errorf("nftables: %w", err)
		}
	}

	// 2. and 3. IPVS and the dummy link.
	var errs []error
	gone, err := b.reconcile(last, p, recorded, st)
	if err != nil {
		errs = append(errs, err)
	}

	// 4. The record of virtual servers that are gone.
	tx = nft.NewTransaction()
	for _, k := range sortedKeysOf(recorded) {
		if e := keyElement(k); gone[e] && !p.sets[setNodeAddrServers][e] {
			tx.Delete(&knftables.Element{Set: setSpecs[setNodeAddrServers].name, Key: []string{e}})
			st.changes++
		}
	}
	if tx.NumOperations() > 0 {
		if err := nft.Run(ctx, tx); err != nil {
			errs = append(errs, fmt.Errorf("nftables: %w", err))
		}
	}
	return st, errors.Join(errs...)
}

// reconcile brings IPVS and the dummy link's addresses to p and returns the
// record elements (see setNodeAddrServers) of the virtual servers on node
// addresses that are gone from the kernel. Failures of single objects do not
// stop it; they are all returned.
func (b *Backend) reconcile(last *applied, p *plan, recorded map[Key]bool, st *syncState) (map[string]bool, error) {
	fam, ifname := p.fam, b.opts.Interface
	all, err := b.ipvs.VirtualServers()
	if err != nil {
		return nil, fmt.Errorf("list virtual servers: %w", err)
	}
	current := map[Key]VirtualServer{}
	for _, vs := range all {
		if fam.has(vs.Addr) {
			current[vs.Key()] = vs
		}
	}
	addrs, err := b.host.LinkAddrs(ifname)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", ifname, err)
	}
	bound := map[netip.Addr]bool{}
	for _, a := range addrs {
		// The kernel gives every IPv6 link a link-local address of its
		// own; a virtual address never is one.
		if fam.has(a) && !a.IsLinkLocalUnicast() {
			bound[a] = true
		}
	}

	var errs []error
	fail := func(err error) { errs = append(errs, err) }
	for _, a := range sortedAddrs(p.bind) {
		if !bound[a] {
			if err := b.host.AddLinkAddr(ifname, a); err != nil {
				fail(fmt.Errorf("add %v to %s: %w", a, ifname, err))
			}
			st.changes++
		}
	}
	for _, d := range p.sortedServers() {
		k := d.vs.Key()
		cur, exists := current[k]
		if !exists {
			st.changes++
			if err := b.ipvs.AddVirtualServer(d.vs); err != nil {
				fail(fmt.Errorf("add virtual server %v: %w", k, err))
				continue
			}
			for _, r := range d.reals {
				st.changes++
				if err := b.ipvs.AddRealServer(d.vs, RealServer{Addr: r, Weight: 1}); err != nil {
					fail(fmt.Errorf("add real server %v to %v: %w", r, k, err))
				}
			}
			continue
		}
		configured := cur.sameConfig(d.vs)
		if !configured {
			st.changes++
			if err := b.ipvs.UpdateVirtualServer(d.vs); err != nil {
				fail(fmt.Errorf("update virtual server %v: %w", k, err))
			}
		}
		if configured && last != nil && !last.draining[k] {
			if was := last.plan.servers[k]; was != nil && was.equal(d) {
				continue // unchanged since the last sync
			}
		}
		if err := b.reconcileReals(d, st); err != nil {
			fail(err)
		}
	}

	// Virtual servers lbkit owns and no longer wants. A whole virtual
	// server goes at once, as in kube-proxy: there is no service left to
	// drain connections for.
	gone := map[string]bool{}
	for k := range recorded {
		if _, exists := current[k]; !exists {
			gone[keyElement(k)] = true
		}
	}
	for _, k := range sortedKeysOf(current) {
		if p.servers[k] != nil || !(bound[k.Addr] || recorded[k]) {
			continue
		}
		st.changes++
		if err := b.ipvs.DeleteVirtualServer(current[k]); err != nil {
			fail(fmt.Errorf("delete virtual server %v: %w", k, err))
			continue
		}
		gone[keyElement(k)] = true
	}
	for _, a := range sortedAddrs(bound) {
		if !p.bind[a] {
			st.changes++
			if err := b.host.DeleteLinkAddr(ifname, a); err != nil {
				fail(fmt.Errorf("delete %v from %s: %w", a, ifname, err))
			}
		}
	}
	return gone, errors.Join(errs...)
}

// reconcileReals brings the real servers of one existing virtual server to
// d. A real server that is no longer wanted but still has connections is
// kept at weight 0 (no new connections) until they end, for TCP; UDP and
// SCTP ones go at once, as in kube-proxy: with expire_nodest_conn their
// flows move to another real server on the next packet.
func (b *Backend) reconcileReals(d *desired, st *syncState) error {
	k := d.vs.Key()
	reals, err := b.ipvs.RealServers(d.vs)
	if err != nil {
		return fmt.Errorf("list real servers of %v: %w", k, err)
	}
	var errs []error
	have := make(map[netip.AddrPort]RealServer, len(reals))
	for _, r := range reals {
		have[r.Addr] = r
	}
	want := make(map[netip.AddrPort]bool, len(d.reals))
	for _, a := range d.reals {
		want[a] = true
		r, ok := have[a]
		switch {
		case !ok:
			st.changes++
			if err := b.ipvs.AddRealServer(d.vs, RealServer{Addr: a, Weight: 1}); err != nil {
				errs = append(errs, fmt.Errorf("add real server %v to %v: %w", a, k, err))
			}
		case r.Weight != 1 || r.Forward != ForwardMasq:
			st.changes++
			if err := b.ipvs.UpdateRealServer(d.vs, RealServer{Addr: a, Weight: 1}); err != nil {
				errs = append(errs, fmt.Errorf("update real server %v of %v: %w", a, k, err))
			}
		}
	}
	for _, r := range reals {
		if want[r.Addr] {
			continue
		}
		if d.vs.Protocol == v1.ProtocolTCP && r.ActiveConns+r.InactiveConns > 0 {
			st.draining[k] = true
			if r.Weight != 0 {
				st.changes++
				if err := b.ipvs.UpdateRealServer(d.vs, RealServer{Addr: r.Addr, Weight: 0, Forward: r.Forward}); err != nil {
					errs = append(errs, fmt.Errorf("quiesce real server %v of %v: %w", r.Addr, k, err))
				}
			}
			continue
		}
		st.changes++
		if err := b.ipvs.DeleteRealServer(d.vs, r); err != nil {
			errs = append(errs, fmt.Errorf("delete real server %v of %v: %w", r.Addr, k, err))
		}
	}
	return errors.Join(errs...)
}

func toSet(addrs []netip.Addr) map[netip.Addr]bool {
	m := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		m[a] = true
	}
	return m
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func sortedKeysOf[V any](m map[Key]V) []Key {
	out := make([]Key, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, Key.Compare)
	return out
}
