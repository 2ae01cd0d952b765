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
func WithCleanup(b backends.Interface, c *Cleaner) backends.Interface {
	return &withCleanup{Interface: b, cleaner: c}
}

type withCleanup struct {
	backends.Interface
	cleaner *Cleaner
}

func (w *withCleanup) Sync(ctx context.Context, prev, next *servicemap.Snapshot) error {
	if err := w.Interface.Sync(ctx, prev, next); err != nil {
		return err
	}
	if n, err := w.cleaner.Reconcile(next); err != nil {
		w.cleaner.logger().Warn("conntrack cleanup failed", "backend", w.Name(), "err", err)
	} else if n > 0 {
		w.cleaner.logger().Debug("stale UDP flows deleted", "backend", w.Name(), "flows", n)
	}
	return nil
}
