package backends

import (
	"context"

	"github.com/lbkit/lbkit/servicemap"
)

// Interface is a data plane that lbkit (or a user) can bring to the state a
// Snapshot describes. Implementations must be safe for use by one goroutine
// at a time; the Runner never calls them concurrently.
type Interface interface {
	// Name identifies the backend in logs and metrics ("nftables").
	Name() string
	// Sync brings the data plane to next. prev is the snapshot of the last
	// Sync that returned nil, or nil for a full sync: it is a hint for doing
	// less work, never the only source of truth. A backend compares against
	// what the data plane holds where it can, so a restarted process (prev
	// nil) converges just the same. A Sync that fails leaves the previous
	// good state in place as far as the data plane allows, and the caller
	// retries with prev nil.
	Sync(ctx context.Context, prev, next *servicemap.Snapshot) error
	// Cleanup removes everything the backend created, and nothing else.
	Cleanup(ctx context.Context) error
}
