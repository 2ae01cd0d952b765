//go:build linux

package nftables

import (
	"context"
	"fmt"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
)

// Drifted reports whether lbkit's tables were changed behind the Backend's
// back since its last successful Sync (backends.DriftChecker): a table
// that holds service ports is gone (`nft flush ruleset`, `nft delete
// table`), or its dispatch chain ("services", which every service's traffic
// passes) no longer holds its rules (`nft flush table`, `nft flush chain`).
//
// It is cheap whatever the number of services. The kernel's ruleset
// generation changes with every commit in the network namespace, anyone's,
// so it is only a hint: while it stays where the last check found every
// table in place, one request answers; when it moved, Drifted lists the
// family's tables and the dispatch chain of each of lbkit's, one small
// request per table. Changes other programs make to their own tables are
// never a drift. Before the first successful Sync, and after a failed one,
// it returns true: the next Sync is a full one anyway.
func (b *Backend) Drifted(ctx context.Context) (bool, error) {
	if !b.synced {
		return true, nil
	}
	if b.opts.NFT != nil {
		return b.driftedNFT(ctx)
	}
	q, err := openQuery()
	if err != nil {
		return false, fmt.Errorf("nftables: drift check: %w", backends.WithCause(err))
	}
	defer func() { b.io.dumps += q.dumps; q.close() }()
	gen, err := q.generation()
	if err != nil {
		return false, fmt.Errorf("nftables: ruleset generation: %w", backends.WithCause(err))
	}
	if b.genKnown && gen == b.gen {
		return false, nil
	}
	drifted, err := b.inspect(ctx, q)
	if err != nil {
		return false, fmt.Errorf("nftables: drift check: %w", backends.WithCause(err))
	}
	// What was read is true as of gen at least: any later commit moves the
	// generation again, and the next check looks again.
	b.gen, b.genKnown = gen, !drifted
	return drifted, nil
}

// inspect looks at every table that should hold service ports.
func (b *Backend) inspect(ctx context.Context, q *nlQuery) (bool, error) {
	present, err := q.tables(b.fam)
	if err != nil {
		return false, fmt.Errorf("list tables: %w", err)
	}
	for _, sh := range b.shards {
		if len(sh.rec.ports) == 0 {
			continue
		}
		if !present[sh.table] {
			b.opts.Logger.Info("nftables: table gone", "table", sh.table)
			return true, nil
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		n, err := q.ruleCount(b.fam, sh.table, chainServices)
		if err != nil {
			return false, fmt.Errorf("table %s: list chain %s: %w", sh.table, chainServices, err)
		}
		if n != b.markerRules {
			b.opts.Logger.Info("nftables: dispatch chain changed", "table", sh.table, "rules", n, "want", b.markerRules)
			return true, nil
		}
	}
	return false, nil
}

// driftedNFT is Drifted through Options.NFT (one table, no generation).
func (b *Backend) driftedNFT(ctx context.Context) (bool, error) {
	if len(b.shards[0].rec.ports) == 0 {
		return false, nil
	}
	b.io.dumps++
	rules, err := b.opts.NFT.ListRules(ctx, chainServices)
	if err != nil && !notFound(err) {
		return false, fmt.Errorf("nftables: drift check: %w", backends.WithCause(err))
	}
	return len(rules) != b.markerRules, nil
}

// markerRules is how many rules the dispatch chain holds in the tables
// Sync writes for snap.
func markerRules(snap *servicemap.Snapshot, spec Spec) int {
	skel := newBuilder(snap, spec).skeleton()
	for _, c := range skel.fixed {
		if c.name == chainServices {
			return len(c.rules)
		}
	}
	return 0
}
