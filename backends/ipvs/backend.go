//go:build linux

package ipvs

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
)

// Backend programs a Snapshot into IPVS, a dummy link and an nftables
// table. It implements backends.Interface; like every backend it is used
// by one goroutine at a time.
type Backend struct {
	spec Spec
	opts Options
	ipvs Handle
	host Host
	nfts map[knftables.Family]knftables.Interface
	// close releases the kernel handles New opened.
	close func()
	// applied records the last successful sync; nil makes the next sync a
	// full one.
	applied *applied
}

// applied is what the last successful sync left behind.
type applied struct {
	version uint64
	// plan is updated in place by an incremental sync; a failed sync
	// drops it.
	plan *plan
	// draining are the virtual servers that kept real servers at weight 0
	// because they still had connections; every sync looks at them again.
	draining map[Key]bool
}

var (
	_ backends.Interface     = (*Backend)(nil)
	_ backends.ChangesSyncer = (*Backend)(nil)
)

// sysctls are what kube-proxy's IPVS mode sets, written at every full
// sync (see the package documentation).
var sysctls = []struct{ name, value string }{
	{"net/ipv4/vs/conntrack", "1"},
	{"net/ipv4/vs/expire_nodest_conn", "1"},
	{"net/ipv4/vs/expire_quiescent_template", "1"},
	{"net/ipv4/conf/all/arp_ignore", "1"},
	{"net/ipv4/conf/all/arp_announce", "2"},
}

// New returns a Backend that programs spec. An invalid spec is an error
// wrapping backends.ErrInvalidConfig (see Spec.Validate). Unless
// Options.IPVS and Options.Host are given, it opens netlink sockets in the
// network namespace of the calling thread and checks that the kernel has
// IPVS; without IPVS, or without the nft binary (when Options.NFT is nil),
// it returns an error wrapping backends.ErrNotSupported, and without
// CAP_NET_ADMIN one wrapping backends.ErrPermission.
func New(spec Spec, opts Options) (*Backend, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	b := &Backend{spec: spec.withDefaults(), opts: opts, ipvs: opts.IPVS, host: opts.Host,
		nfts: map[knftables.Family]knftables.Interface{}, close: func() {}}
	if opts.NFT == nil {
		if _, err := exec.LookPath("nft"); err != nil {
			return nil, fmt.Errorf("%w: ipvs: the netfilter half needs nft: %w", backends.ErrNotSupported, err)
		}
	}
	if b.ipvs != nil && b.host != nil {
		return b, nil
	}
	k, err := openKernel()
	if err != nil {
		return nil, err
	}
	b.close = k.close
	if b.ipvs == nil {
		b.ipvs = k.ipvs
	}
	if b.host == nil {
		b.host = k.host
	}
	return b, nil
}

// Close releases the netlink sockets New opened. The Backend must not be
// used afterwards. It does not touch the kernel's state: see Cleanup.
func (b *Backend) Close() error {
	b.close()
	b.close = func() {}
	return nil
}

// nftFamily is the family as knftables names it.
func nftFamily(f family) knftables.Family { return knftables.Family(f.IP) }

// Name returns "ipvs".
func (b *Backend) Name() string { return "ipvs" }

func (b *Backend) nftFor(fam family) (knftables.Interface, error) {
	if b.opts.NFT != nil {
		return b.opts.NFT, nil
	}
	if nft := b.nfts[nftFamily(fam)]; nft != nil {
		return nft, nil
	}
	nft, err := knftables.New(nftFamily(fam), b.spec.Table)
	if err != nil {
		return nil, unusable("nftables", err)
	}
	b.nfts[nftFamily(fam)] = nft
	return nft, nil
}

// Sync brings IPVS, the dummy link and the nftables table to next. A full
// sync (prev nil, or not the snapshot this backend applied last, or after
// a failed sync) compares with what the kernel holds: it lists the virtual
// servers, their real servers and the dummy link's addresses, and adds,
// updates or deletes only what differs. An incremental sync (prev the
// snapshot applied last) plans only the service ports that changed and
// touches only their virtual servers, addresses and set elements (see
// SyncChanges). IPVS has no transactions: a Sync that fails has applied
// what it could, returns an error wrapping backends.ErrApply that lists
// every failure, and the next Sync is a full one.
func (b *Backend) Sync(ctx context.Context, prev, next *servicemap.Snapshot) error {
	return b.SyncChanges(ctx, prev, next, nil)
}

// SyncChanges is Sync with c = servicemap.Diff(prev, next) computed by the
// caller (backends.ChangesSyncer); nil c is computed when needed.
func (b *Backend) SyncChanges(ctx context.Context, prev, next *servicemap.Snapshot, c *servicemap.Changes) error {
	start := time.Now()
	fam := familyOf(next.IPFamily())
	nft, err := b.nftFor(fam)
	if err != nil {
		return err
	}
	full := b.applied == nil || prev == nil || prev.Version() != b.applied.version || b.applied.plan.fam != fam
	last := b.applied
	b.applied = nil
	var st *syncState
	if !full {
		if c == nil {
			d := servicemap.Diff(prev, next)
			c = &d
		}
		st, err = b.incrementalSync(ctx, nft, last, c)
		full = st == nil && err == nil
	}
	if full {
		st, err = b.fullSync(ctx, nft, fam, next)
	}
	if err != nil {
		return fmt.Errorf("%w: ipvs %s sync to version %d: %w", backends.ErrApply, syncKind(full), next.Version(), backends.WithCause(err))
	}
	b.applied = &applied{version: next.Version(), plan: st.plan, draining: st.draining}
	b.opts.Logger.Debug("ipvs sync", "kind", syncKind(full), "version", next.Version(),
		"servicePorts", next.Len(), "virtualServers", len(st.plan.servers), "changes", st.changes,
		"draining", len(st.draining), "elapsed", time.Since(start))
	return nil
}

// unusable explains why IPVS cannot be used: a missing privilege
// (ErrPermission), or else something missing (ErrNotSupported).
func unusable(what string, err error) error {
	err = backends.WithCause(err)
	if errors.Is(err, backends.ErrPermission) {
		return fmt.Errorf("ipvs: %s: %w", what, err)
	}
	return fmt.Errorf("%w: ipvs: %s: %w", backends.ErrNotSupported, what, err)
}

func syncKind(full bool) string {
	if full {
		return "full"
	}
	return "incremental"
}

// Cleanup deletes lbkit's virtual servers (by the ownership rule: those on
// the dummy link's addresses and those on node addresses that the
// nftables table records), the dummy link and the nftables tables (ip and ip6). It leaves
// every other virtual server alone and can run any number of times.
func (b *Backend) Cleanup(ctx context.Context) error {
	b.applied = nil
	var errs []error
	owned := map[Key]bool{}
	fams := []family{ipv4, ipv6}
	if b.opts.NFT != nil {
		fams = fams[:1] // the given interface has one family
	}
	for _, fam := range fams {
		nft, err := b.nftFor(fam)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rec, err := readRecord(ctx, nft)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for k := range rec {
			owned[k] = true
		}
	}
	bound, err := b.host.LinkAddrs(b.spec.Interface)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("ipvs: addresses of %s: %w", b.spec.Interface, err))...)
	}
	onDummy := toSet(bound)
	servers, err := b.ipvs.VirtualServers()
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("ipvs: list virtual servers: %w", err))...)
	}
	deleteFailed := false
	for _, vs := range servers {
		if onDummy[vs.Addr] || owned[vs.Key()] {
			if err := b.ipvs.DeleteVirtualServer(vs); err != nil {
				errs = append(errs, fmt.Errorf("ipvs: delete virtual server %v: %w", vs.Key(), err))
				deleteFailed = true
			}
		}
	}
	if deleteFailed {
		// The dummy link and the table are the proof of ownership of what
		// is left: keep them for the next try.
		return errors.Join(errs...)
	}
	if err := b.host.DeleteDummy(b.spec.Interface); err != nil {
		errs = append(errs, fmt.Errorf("ipvs: delete link %s: %w", b.spec.Interface, err))
	}
	for _, fam := range fams {
		nft, err := b.nftFor(fam)
		if err != nil {
			continue // reported above
		}
		tx := nft.NewTransaction()
		tx.Delete(&knftables.Table{})
		if err := nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("ipvs: delete table %s %s: %w", nftFamily(fam), b.spec.Table, err))
		}
	}
	return errors.Join(errs...)
}
