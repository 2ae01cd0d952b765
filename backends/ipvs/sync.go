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

// nodeAddrs reads the node's addresses: those node ports are served on
// (filtered, see nftfam.Family.NodePortIPs) and every one on links other than the
// dummy one.
func (b *Backend) nodeAddrs(fam family) ([]netip.Addr, map[netip.Addr]bool, error) {
	o := &b.spec
	if err := b.host.EnsureDummy(o.Interface); err != nil {
		return nil, nil, fmt.Errorf("link %s: %w", o.Interface, err)
	}
	local, err := b.host.NodeAddrs(o.Interface)
	if err != nil {
		return nil, nil, fmt.Errorf("node addresses: %w", err)
	}
	nodeIPs := o.NodeIPs
	if len(nodeIPs) == 0 {
		nodeIPs = local
	}
	return fam.NodePortIPs(nodeIPs, o.NodePortAddresses), toSet(append(local, o.NodeIPs...)), nil
}

// fullSync applies next, comparing with everything the kernel holds.
//
// The order keeps traffic flowing and ownership provable at every step:
//  1. one nftables transaction that rewrites the table, except that the
//     record of virtual servers on node addresses only grows here: it
//     names those about to be created;
//  2. addresses on the dummy link, then virtual and real servers;
//  3. virtual servers lbkit owns but no longer wants, then their
//     addresses;
//  4. the record of the virtual servers on node addresses now gone.
func (b *Backend) fullSync(ctx context.Context, nft knftables.Interface, fam family, next *servicemap.Snapshot) (*syncState, error) {
	o := &b.spec
	for _, s := range sysctls {
		if err := b.host.SetSysctl(s.name, s.value); err != nil {
			return nil, fmt.Errorf("sysctl %s=%s: %w", s.name, s.value, err)
		}
	}
	nodeIPs, local, err := b.nodeAddrs(fam)
	if err != nil {
		return nil, err
	}
	p := buildPlan(next, o, b.opts.Logger, nodeIPs, local)
	st := &syncState{plan: p, draining: map[Key]bool{}}

	// 1. netfilter: everything but the deletions from the record.
	recorded, err := readRecord(ctx, nft)
	if err != nil {
		return nil, err
	}
	if recorded == nil {
		recorded = map[Key]bool{}
	}
	tx := nft.NewTransaction()
	skeleton(tx, fam, o.MasqueradeMark, o.MasqueradeAll)
	// The record keeps what it had until those servers are gone.
	for k := range recorded {
		tx.Add(&knftables.Element{Set: setSpecs[setNodeAddrServers].name, Key: []string{keyElement(k)}})
	}
	for id := range numSets {
		for _, e := range sortedKeys(p.sets[id]) {
			tx.Add(element(id, e))
			st.changes++
		}
	}
	if err := nft.Run(ctx, tx); err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}

	// 2. and 3. IPVS and the dummy link.
	var errs []error
	gone, err := b.reconcile(p, recorded, st)
	if err != nil {
		errs = append(errs, err)
	}

	// 4. The record of virtual servers that are gone.
	var forget []string
	for _, k := range sortedKeysOf(recorded) {
		if e := keyElement(k); gone[e] && p.sets[setNodeAddrServers][e] == 0 {
			forget = append(forget, e)
		}
	}
	if err := b.forget(ctx, nft, forget, st); err != nil {
		errs = append(errs, err)
	}
	return st, errors.Join(errs...)
}

// forget deletes elements of the record of virtual servers on node
// addresses.
func (b *Backend) forget(ctx context.Context, nft knftables.Interface, elems []string, st *syncState) error {
	if len(elems) == 0 {
		return nil
	}
	tx := nft.NewTransaction()
	for _, e := range elems {
		tx.Delete(&knftables.Element{Set: setSpecs[setNodeAddrServers].name, Key: []string{e}})
		st.changes++
	}
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}

// reconcile brings IPVS and the dummy link's addresses to p and returns the
// record elements (see setNodeAddrServers) of the virtual servers on node
// addresses that are gone from the kernel. Failures of single objects do not
// stop it; they are all returned.
func (b *Backend) reconcile(p *plan, recorded map[Key]bool, st *syncState) (map[string]bool, error) {
	fam, ifname := p.fam, b.spec.Interface
	all, err := b.ipvs.VirtualServers()
	if err != nil {
		return nil, fmt.Errorf("list virtual servers: %w", err)
	}
	current := map[Key]VirtualServer{}
	for _, vs := range all {
		if fam.Has(vs.Addr) {
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
		if fam.Has(a) && !a.IsLinkLocalUnicast() {
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
			b.addServer(d, st, fail)
			continue
		}
		if !cur.sameConfig(d.vs) {
			st.changes++
			if err := b.ipvs.UpdateVirtualServer(d.vs); err != nil {
				fail(fmt.Errorf("update virtual server %v: %w", k, err))
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
		if p.bind[a] == 0 {
			st.changes++
			if err := b.host.DeleteLinkAddr(ifname, a); err != nil {
				fail(fmt.Errorf("delete %v from %s: %w", a, ifname, err))
			}
		}
	}
	return gone, errors.Join(errs...)
}

// addServer adds a virtual server and its real servers.
func (b *Backend) addServer(d *desired, st *syncState, fail func(error)) {
	k := d.vs.Key()
	st.changes++
	if err := b.ipvs.AddVirtualServer(d.vs); err != nil {
		fail(fmt.Errorf("add virtual server %v: %w", k, err))
		return
	}
	b.addReals(d, st, fail)
}

// addReals adds the real servers of a virtual server just added.
func (b *Backend) addReals(d *desired, st *syncState, fail func(error)) {
	k := d.vs.Key()
	for _, r := range d.reals {
		st.changes++
		if err := b.ipvs.AddRealServer(d.vs, RealServer{Addr: r, Weight: 1}); err != nil {
			fail(fmt.Errorf("add real server %v to %v: %w", r, k, err))
		}
	}
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

func sortedAddrs[V any](m map[netip.Addr]V) []netip.Addr {
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
