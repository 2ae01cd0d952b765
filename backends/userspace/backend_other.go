//go:build !linux

package userspace

import (
	"context"
	"fmt"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
)

// Backend is the userspace proxy; it needs Linux (network namespaces, a
// link of its own, nftables). Elsewhere New returns an error.
type Backend struct{}

// New returns an error wrapping backends.ErrNotSupported off Linux.
func New(Spec, Options) (*Backend, error) {
	return nil, fmt.Errorf("userspace: %w: needs Linux", backends.ErrNotSupported)
}

func (*Backend) Name() string { return "userspace" }

func (*Backend) Sync(context.Context, *servicemap.Snapshot, *servicemap.Snapshot) error {
	return backends.ErrNotSupported
}

func (*Backend) Close() error { return nil }

func (*Backend) Cleanup(context.Context) error { return nil }
