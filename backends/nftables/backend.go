//go:build linux

package nftables

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

// Backend programs a Snapshot into an nftables table. It implements
// backends.Interface; like every backend it is used by one goroutine at a
// time.
type Backend struct {
	opts Options
	nfts map[knftables.Family]knftables.Interface
	// applied is the record of the last successful sync; nil makes the next
	// sync a full one.
	applied *applied
	// deferred are chains and sets whose deletion the kernel refused (kernels
	// before 6.2 see a chain as referenced for a while after the map element
	// pointing at it is deleted); they are flushed and unreferenced, and
	// every later sync tries again.
	deferred []deferredDelete
}

type deferredDelete struct {
	kind string // "chain", "set" or "map"
	name string
}

var _ backends.Interface = (*Backend)(nil)

// New returns a Backend. Without Options.NFT it checks that nft is
// installed and usable (which needs CAP_NET_ADMIN) and returns an error
// wrapping backends.ErrUnsupported when it is not.
func New(opts Options) (*Backend, error) {
	opts = opts.withDefaults()
	b := &Backend{opts: opts, nfts: map[knftables.Family]knftables.Interface{}}
	if opts.NFT != nil {
		return b, nil
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return nil, fmt.Errorf("%w: nftables: %v", backends.ErrUnsupported, err)
	}
	if _, err := b.nftFor(ipv4); err != nil {
		return nil, err
	}
	return b, nil
}

// nftFor returns the interface for a family's table. Listing goes through
// netlink: `nft list table` prints every rule, which takes tens of seconds
// at 10,000 services, where a netlink dump of the chain names takes
// milliseconds.
func (b *Backend) nftFor(fam family) (knftables.Interface, error) {
	if b.opts.NFT != nil {
		return b.opts.NFT, nil
	}
	if nft := b.nfts[fam.nft]; nft != nil {
		return nft, nil
	}
	nft, err := knftables.New(fam.nft, b.opts.Table, knftables.UseNetlink)
	if err != nil {
		return nil, fmt.Errorf("%w: nftables: %v", backends.ErrUnsupported, err)
	}
	b.nfts[fam.nft] = nft
	return nft, nil
}

// Name returns "nftables".
func (b *Backend) Name() string { return "nftables" }

// Sync brings the table to next. When prev is the snapshot this backend
// applied last, it sends one transaction with what changed (nothing, if
// nothing did); otherwise it reconciles the whole table against what the
// kernel holds, BatchSize service ports per transaction. A failure returns
// an error wrapping backends.ErrApply, and the next Sync is a full one.
func (b *Backend) Sync(ctx context.Context, prev, next *servicemap.Snapshot) error {
	fam := familyOf(next.IPFamily())
	nft, err := b.nftFor(fam)
	if err != nil {
		return err
	}
	start := time.Now()
	full := b.applied == nil || prev == nil || prev.Version() != b.applied.version ||
		b.applied.fam != fam || familyOf(prev.IPFamily()) != fam
	var n int
	if full {
		n, err = b.fullSync(ctx, nft, next)
	} else {
		n, err = b.incrementalSync(ctx, nft, prev, next)
	}
	if err != nil {
		b.applied = nil
		return fmt.Errorf("%w: nftables %s sync to version %d: %v", backends.ErrApply, syncKind(full), next.Version(), err)
	}
	b.opts.Logger.Debug("nftables sync", "kind", syncKind(full), "version", next.Version(),
		"servicePorts", next.Len(), "operations", n, "elapsed", time.Since(start))
	return nil
}

func syncKind(full bool) string {
	if full {
		return "full"
	}
	return "incremental"
}

// Cleanup deletes lbkit's tables (ip and ip6) and nothing else.
func (b *Backend) Cleanup(ctx context.Context) error {
	b.applied, b.deferred = nil, nil
	fams := []family{ipv4, ipv6}
	if b.opts.NFT != nil {
		fams = fams[:1] // the given interface has one family
	}
	var errs []error
	for _, fam := range fams {
		nft, err := b.nftFor(fam)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tx := nft.NewTransaction()
		tx.Delete(&knftables.Table{})
		if err := nft.Run(ctx, tx); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("delete table %s %s: %w", fam.nft, b.opts.Table, err))
		}
	}
	return errors.Join(errs...)
}

// run sends main and then deletes as one transaction. If that fails and
// deletes is not empty, it sends main alone and keeps the deletes for a
// later sync (see Backend.deferred): the objects they delete are already
// flushed and unreferenced by main.
func (b *Backend) run(ctx context.Context, nft knftables.Interface, main ops, deletes []deferredDelete) (int, error) {
	all := main
	if len(deletes) > 0 {
		all = append(main[:len(main):len(main)], deleteOps(deletes)...)
	}
	if len(all) == 0 {
		return 0, nil
	}
	tx := nft.NewTransaction()
	all.fill(tx)
	err := nft.Run(ctx, tx)
	if err == nil || len(deletes) == 0 {
		return len(all), err
	}
	if len(main) > 0 {
		tx = nft.NewTransaction()
		main.fill(tx)
		if err2 := nft.Run(ctx, tx); err2 != nil {
			return 0, err // the first error says more
		}
	}
	b.opts.Logger.Warn("nftables: deletion of unreferenced objects deferred to a later sync",
		"objects", len(deletes), "error", err)
	b.deferred = append(b.deferred, deletes...)
	return len(main), nil
}

// deleteOps deletes chains first: a set can only go once no rule uses it.
func deleteOps(ds []deferredDelete) ops {
	out := make(ops, 0, len(ds))
	for _, d := range ds {
		if d.kind == "chain" {
			out.delete(&knftables.Chain{Name: d.name})
		}
	}
	for _, d := range ds {
		if d.kind != "chain" {
			out.delete(setRef(d.name, d.kind == "map"))
		}
	}
	return out
}
