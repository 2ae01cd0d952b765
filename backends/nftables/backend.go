//go:build linux

package nftables

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"time"

	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
)

// Backend programs a Snapshot into nftables tables (see Spec.Shards). It
// implements backends.Interface; like every backend it is used by one
// goroutine at a time.
type Backend struct {
	spec Spec
	opts Options
	w    writer
	// listers list one table each, through netlink.
	listers map[tableKey]knftables.Interface
	// synced says that shards record what the kernel holds as of version,
	// in family fam; when false the next sync is a full one.
	synced  bool
	version uint64
	fam     family
	shards  []*shard
	// markerRules is how many rules the dispatch chain of every table
	// holds (see Drifted); gen is the ruleset generation at which Drifted
	// last found every table in place, valid when genKnown.
	markerRules int
	gen         uint32
	genKnown    bool
	// io counts the requests made of the kernel, for tests and benchmarks
	// (incremental syncs must never list).
	io kernelIO
}

// kernelIO counts kernel requests: dumps (listing requests) and the
// messages of the transactions sent.
type kernelIO struct {
	dumps    int
	messages int
}

// shard is the record of one table.
type shard struct {
	table string
	// rec is what the last sync put in the table; no ports means no table.
	rec *applied
	// deferred are chains and sets whose deletion the kernel refused (kernels
	// before 6.2 see a chain as referenced for a while after the map element
	// pointing at it is deleted); they are flushed and unreferenced, and
	// every later sync tries again.
	deferred []deferredDelete
}

type tableKey struct {
	fam   knftables.Family
	table string
}

type deferredDelete struct {
	kind string // "chain", "set" or "map"
	name string
}

var (
	_ backends.ChangesSyncer = (*Backend)(nil)
	_ backends.DriftChecker  = (*Backend)(nil)
)

// New returns a Backend that programs spec as opts say. An invalid spec,
// or options that contradict it, give an error wrapping
// backends.ErrInvalidConfig. Without Options.NFT it checks that nftables
// can be used: it returns an error wrapping backends.ErrPermission without
// CAP_NET_ADMIN, and backends.ErrNotSupported without nftables in the
// kernel (or the nft binary, for TransportNFT).
func New(spec Spec, opts Options) (*Backend, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := opts.validate(spec); err != nil {
		return nil, err
	}
	if opts.NFT != nil {
		spec.Shards = 1
	}
	spec, opts = spec.withDefaults(), opts.withDefaults()
	b := &Backend{spec: spec, opts: opts, listers: map[tableKey]knftables.Interface{}}
	w := newNetlinkWriter()
	w.messages = &b.io.messages
	for i := range spec.Shards {
		b.shards = append(b.shards, &shard{table: tableName(spec, i), rec: newApplied(0)})
	}
	switch {
	case opts.NFT != nil:
		b.w = nftWriter{b}
		return b, nil
	case opts.Transport == TransportNFT:
		b.w = nftWriter{b}
		if _, err := exec.LookPath("nft"); err != nil {
			return nil, fmt.Errorf("%w: nftables: %w", backends.ErrNotSupported, err)
		}
		if _, err := b.nftFor(ipv4, spec.Table); err != nil {
			return nil, err
		}
	default:
		b.w = w
	}
	// Listing goes over netlink with either transport: this checks that
	// nftables is there and that the process may use it.
	if _, err := listTables(ipv4); err != nil {
		return nil, unusable(err)
	}
	return b, nil
}

// unusable explains why nftables cannot be used: a missing privilege
// (ErrPermission), or else something missing (ErrNotSupported).
func unusable(err error) error {
	err = backends.WithCause(err)
	if errors.Is(err, backends.ErrPermission) {
		return fmt.Errorf("nftables: %w", err)
	}
	return fmt.Errorf("%w: nftables: %w", backends.ErrNotSupported, err)
}

// nftFor returns the knftables interface for one table (Options.NFT, or
// the nft binary for TransportNFT).
func (b *Backend) nftFor(fam family, table string) (knftables.Interface, error) {
	if b.opts.NFT != nil {
		return b.opts.NFT, nil
	}
	k := tableKey{nftFamily(fam), table}
	if nft := b.listers[k]; nft != nil {
		return nft, nil
	}
	nft, err := knftables.New(nftFamily(fam), table, knftables.UseNetlink)
	if err != nil {
		return nil, unusable(err)
	}
	b.listers[k] = nft
	return nft, nil
}

// writer sends ops to one table as one transaction.
type writer interface {
	run(ctx context.Context, fam family, table string, o ops) error
}

// nftWriter writes through knftables (the nft binary, or Options.NFT).
type nftWriter struct{ b *Backend }

func (w nftWriter) run(ctx context.Context, fam family, table string, o ops) error {
	nft, err := w.b.nftFor(fam, table)
	if err != nil {
		return err
	}
	tx := nft.NewTransaction()
	o.fill(tx, &fam)
	return nft.Run(ctx, tx)
}

// Name returns "nftables".
func (b *Backend) Name() string { return "nftables" }

// Sync brings the table to next. When prev is the snapshot this backend
// applied last, it sends one transaction with what changed (nothing, if
// nothing did); otherwise it reconciles the whole table against what the
// kernel holds, BatchSize service ports per transaction. A failure returns
// an error wrapping backends.ErrApply (and backends.ErrPermission,
// ErrNotSupported or ErrTimeout when that is the cause), and the next Sync
// is a full one.
func (b *Backend) Sync(ctx context.Context, prev, next *servicemap.Snapshot) error {
	return b.SyncChanges(ctx, prev, next, nil)
}

// SyncChanges is Sync with c = servicemap.Diff(prev, next) computed by the
// caller (backends.ChangesSyncer); nil c is computed when needed.
func (b *Backend) SyncChanges(ctx context.Context, prev, next *servicemap.Snapshot, c *servicemap.Changes) error {
	fam := familyOf(next.IPFamily())
	start := time.Now()
	full := !b.synced || prev == nil || prev.Version() != b.version ||
		b.fam != fam || familyOf(prev.IPFamily()) != fam ||
		!slices.Equal(prev.ServiceCIDRs(), next.ServiceCIDRs()) // part of the skeleton
	b.synced, b.fam, b.genKnown = false, fam, false
	var n int
	var err error
	if full {
		n, err = b.fullSync(ctx, next)
	} else {
		n, err = b.incrementalSync(ctx, prev, next, c)
	}
	if err != nil {
		return fmt.Errorf("%w: nftables %s sync to version %d: %w", backends.ErrApply, syncKind(full), next.Version(), backends.WithCause(err))
	}
	b.synced, b.version = true, next.Version()
	if full {
		b.markerRules = markerRules(next, b.spec)
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

// Cleanup deletes lbkit's tables (ip and ip6, any shard count) and nothing
// else.
func (b *Backend) Cleanup(ctx context.Context) error {
	b.synced, b.genKnown = false, false
	for _, sh := range b.shards {
		sh.rec, sh.deferred = newApplied(0), nil
	}
	fams := []family{ipv4, ipv6}
	if b.opts.NFT != nil {
		fams = fams[:1] // the given interface has one family
	}
	var errs []error
	for _, fam := range fams {
		tables, err := b.ourTables(fam)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, t := range tables {
			if err := b.deleteTable(ctx, fam, t); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ourTables lists the family's tables that this Backend's table name makes
// its own, whatever shard count created them.
func (b *Backend) ourTables(fam family) ([]string, error) {
	if b.opts.NFT != nil {
		return []string{b.spec.Table}, nil
	}
	names, err := listTables(fam)
	b.io.dumps++
	if err != nil {
		return nil, fmt.Errorf("list %s tables: %w", nftFamily(fam), err)
	}
	var out []string
	for _, n := range names {
		if isOurTable(n, b.spec.Table) {
			out = append(out, n)
		}
	}
	return out, nil
}

// deleteTable deletes a table; a missing one is not an error.
func (b *Backend) deleteTable(ctx context.Context, fam family, table string) error {
	var o ops
	o.table(opDelete)
	if err := b.w.run(ctx, fam, table, o); err != nil && !notFound(err) {
		return fmt.Errorf("delete table %s %s: %w", nftFamily(fam), table, err)
	}
	return nil
}

// run sends main and then deletes as one transaction to the shard's table.
// If that fails and deletes is not empty, it sends main alone and keeps the
// deletes for a later sync (see shard.deferred): the objects they delete
// are already flushed and unreferenced by main.
func (b *Backend) run(ctx context.Context, sh *shard, main ops, deletes []deferredDelete) (int, error) {
	all := main
	if len(deletes) > 0 {
		all = append(main[:len(main):len(main)], deleteOps(deletes)...)
	}
	if len(all) == 0 {
		return 0, nil
	}
	err := b.w.run(ctx, b.fam, sh.table, all)
	if err == nil || len(deletes) == 0 {
		return len(all), err
	}
	if len(main) > 0 {
		if err2 := b.w.run(ctx, b.fam, sh.table, main); err2 != nil {
			return 0, err // the first error says more
		}
	}
	b.opts.Logger.Warn("nftables: deletion of unreferenced objects deferred to a later sync",
		"table", sh.table, "objects", len(deletes), "error", err)
	sh.deferred = append(sh.deferred, deletes...)
	return len(main), nil
}

// deleteOps deletes chains first: a set can only go once no rule uses it.
func deleteOps(ds []deferredDelete) ops {
	out := make(ops, 0, len(ds))
	for _, d := range ds {
		if d.kind == "chain" {
			out.chainNamed(opDelete, d.name)
		}
	}
	for _, d := range ds {
		if d.kind != "chain" {
			out.setOp(opDelete, &set{name: d.name, isMap: d.kind == "map"})
		}
	}
	return out
}
