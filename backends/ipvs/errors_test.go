//go:build linux

package ipvs_test

import (
	"context"
	"errors"
	"syscall"
	"testing"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/servicemaptest"
)

// A Sync the kernel refuses says why, through errors.Is: EPERM is a
// missing privilege, EOPNOTSUPP a missing feature, anything else a refused
// change; all are ErrApply.
func TestSyncErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		want  error
	}{
		{syscall.EPERM, backends.ErrPermission},
		{syscall.EOPNOTSUPP, backends.ErrNotSupported},
		{syscall.EINVAL, nil},
	} {
		w := newWorld(t, ipvs.Options{})
		w.apply(servicemaptest.Service("default", "a", "10.96.0.10", tcp80))
		w.ipvs.FailNext("add 10.96.0.10:80/TCP", tc.errno)
		err := w.b.Sync(context.Background(), nil, w.tr.Snapshot())
		if !errors.Is(err, backends.ErrApply) || !errors.Is(err, tc.errno) {
			t.Errorf("%v: Sync = %v, want ErrApply wrapping the errno", tc.errno, err)
		}
		for _, s := range []error{backends.ErrPermission, backends.ErrNotSupported, backends.ErrTimeout} {
			if got := errors.Is(err, s); got != (s == tc.want) {
				t.Errorf("%v: errors.Is(%v) = %v", tc.errno, s, got)
			}
		}
	}
}
