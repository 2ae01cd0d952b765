//go:build !linux

package conntrack

import (
	"fmt"
	"log/slog"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
)

// Cleaner deletes stale UDP conntrack flows; off Linux it cannot be made.
type Cleaner struct{}

// New returns an error wrapping backends.ErrNotSupported: conntrack is
// Linux's.
func New(opts Options) (*Cleaner, error) {
	return nil, fmt.Errorf("conntrack: needs Linux: %w", backends.ErrNotSupported)
}

// Reconcile returns an error wrapping backends.ErrNotSupported.
func (c *Cleaner) Reconcile(snap *servicemap.Snapshot) (deleted int, err error) {
	return 0, fmt.Errorf("conntrack: needs Linux: %w", backends.ErrNotSupported)
}

// ReconcileChanges returns an error wrapping backends.ErrNotSupported.
func (c *Cleaner) ReconcileChanges(snap *servicemap.Snapshot, changes *servicemap.Changes) (deleted int, err error) {
	return 0, fmt.Errorf("conntrack: needs Linux: %w", backends.ErrNotSupported)
}

func (c *Cleaner) logger() *slog.Logger { return slog.New(slog.DiscardHandler) }
