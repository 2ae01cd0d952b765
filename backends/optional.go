package backends

import (
	"context"

	"github.com/lbkit/lbkit/servicemap"
)

// Optional interfaces: a backend implements them when it can do better
// than the plain Interface, and the Runner uses them when it finds them. A
// backend that wraps another (conntrack.WithCleanup) implements the ones
// the wrapped backend implements, so wrapping hides nothing.

// ChangesSyncer is a backend that takes the Diff the Runner already
// computed, so an incremental sync diffs the snapshots once, not twice.
type ChangesSyncer interface {
	Interface
	// SyncChanges is Sync(ctx, prev, next) for a prev that is not nil,
	// with c = servicemap.Diff(prev, next) computed by the caller. It must
	// not modify c; it returns what Sync would. A full sync (prev nil) is
	// always a call of Sync.
	SyncChanges(ctx context.Context, prev, next *servicemap.Snapshot, c *servicemap.Changes) error
}

// DriftChecker is a backend that can tell, cheaply, whether its data plane
// was changed behind its back since its last successful Sync (a flushed
// ruleset, a deleted table). The Runner asks every
// RunnerOptions.DriftCheckInterval and makes the next sync a full one when
// the answer is true (or an error).
type DriftChecker interface {
	Interface
	// Drifted reports whether what the backend last programmed is no
	// longer (all) in place. It must be cheap (a few kernel requests, not
	// a listing of every rule), must not count changes that other programs
	// make to their own objects, and is called from the goroutine that
	// calls Sync, never concurrently with it. Before the first successful
	// Sync, or after a failed one, it may return true.
	Drifted(ctx context.Context) (bool, error)
}

// Wrapper is a backend that wraps another (conntrack.WithCleanup does).
// The Runner looks for the optional interfaces that only ask (DriftChecker,
// Counter) along the chain of wrapped backends; the ones that act
// (ChangesSyncer) only on the outermost, so a wrapper's own Sync always
// runs.
type Wrapper interface {
	Unwrap() Interface
}

// find returns the first backend of b's wrapping chain that is a T.
func find[T any](b Interface) (T, bool) {
	for b != nil {
		if t, ok := b.(T); ok {
			return t, true
		}
		w, ok := b.(Wrapper)
		if !ok {
			break
		}
		b = w.Unwrap()
	}
	var zero T
	return zero, false
}
