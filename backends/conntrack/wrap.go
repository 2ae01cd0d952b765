package conntrack

import (
	"context"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
)

// WithCleanup returns a backend that, after every successful Sync of b,
// reconciles the UDP conntrack table against the snapshot just programmed.
// It works for any backend, lbkit's or a user's: stale flows are a kernel
// matter, not a rules matter. A failed cleanup is logged, not returned: the
// rules are in place, and the next sync reconciles again.
//
// The flows through frontends that a sync removed (a deleted UDP service's
// cluster IP, external or load-balancer IP, node port) are deleted in that
// same sync: from the Diff of an incremental sync, and on a full sync from
// the Diff between the last snapshot synced and the new one.
//
// The result implements backends.ChangesSyncer (handing the Diff on to b
// when b takes it), and backends.DriftChecker exactly when b does, so
// wrapping hides none of b's abilities from a Runner.
func WithCleanup(b backends.Interface, c *Cleaner) backends.Interface {
	w := &withCleanup{Interface: b, cleaner: c}
	if _, ok := b.(backends.DriftChecker); ok {
		return &withCleanupDrift{w}
	}
	return w
}

type withCleanup struct {
	backends.Interface
	cleaner *Cleaner
	// last is the snapshot of the last successful Sync, to tell a full
	// sync what went away since.
	last *servicemap.Snapshot
}

var (
	_ backends.ChangesSyncer = (*withCleanup)(nil)
	_ backends.DriftChecker  = (*withCleanupDrift)(nil)
)

// Unwrap returns the wrapped backend, so that a Runner finds its optional
// interfaces (such as backends.Counter).
func (w *withCleanup) Unwrap() backends.Interface { return w.Interface }

func (w *withCleanup) Sync(ctx context.Context, prev, next *servicemap.Snapshot) error {
	return w.SyncChanges(ctx, prev, next, nil)
}

// SyncChanges syncs b (through its SyncChanges when it has one), then
// cleans up; c nil is computed when prev is not nil.
func (w *withCleanup) SyncChanges(ctx context.Context, prev, next *servicemap.Snapshot, c *servicemap.Changes) error {
	if prev != nil && c == nil {
		d := servicemap.Diff(prev, next)
		c = &d
	}
	var err error
	cs, ok := w.Interface.(backends.ChangesSyncer)
	switch {
	case prev == nil:
		err = w.Interface.Sync(ctx, nil, next)
	case ok:
		err = cs.SyncChanges(ctx, prev, next, c)
	default:
		err = w.Interface.Sync(ctx, prev, next)
	}
	if err != nil {
		return err
	}
	if c == nil && w.last != nil {
		d := servicemap.Diff(w.last, next)
		c = &d
	}
	w.last = next
	if n, err := w.cleaner.ReconcileChanges(next, c); err != nil {
		w.cleaner.logger().Warn("conntrack cleanup failed", "backend", w.Name(), "err", err)
	} else if n > 0 {
		w.cleaner.logger().Debug("stale UDP flows deleted", "backend", w.Name(), "flows", n)
	}
	return nil
}

func (w *withCleanup) Cleanup(ctx context.Context) error {
	w.last = nil
	return w.Interface.Cleanup(ctx)
}

// withCleanupDrift is withCleanup for a b that is a DriftChecker.
type withCleanupDrift struct{ *withCleanup }

func (w *withCleanupDrift) Drifted(ctx context.Context) (bool, error) {
	return w.Interface.(backends.DriftChecker).Drifted(ctx)
}
