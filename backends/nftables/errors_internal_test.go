//go:build linux

package nftables

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// refusingWriter answers every run as the kernel answers a batch it
// refuses with errno, through the netlink writer's own error reporting.
type refusingWriter struct{ errno unix.Errno }

func (w refusingWriter) run(_ context.Context, fam family, table string, o ops) error {
	b := &nlBatch{fam: fam, table: table}
	return b.kernelError(o, []kernelError{{seq: 1, errno: w.errno, offset: -1}}, false)
}

// A Sync the kernel refuses says why, through errors.Is: EPERM is a
// missing privilege, EOPNOTSUPP a missing feature, anything else (EINVAL,
// ENOENT) a refused change; all are ErrApply.
func TestSyncErrorClasses(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	tr.OnServiceAdd(servicemaptest.Service("ns", "web", "10.96.0.10", []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	snap := tr.Snapshot()
	for _, tc := range []struct {
		errno unix.Errno
		want  error
		class backends.ErrorClass
	}{
		{unix.EPERM, backends.ErrPermission, backends.ClassPermission},
		{unix.EOPNOTSUPP, backends.ErrNotSupported, backends.ClassNotSupported},
		{unix.EINVAL, nil, backends.ClassApply},
		{unix.ENOENT, nil, backends.ClassApply},
	} {
		b, err := New(Spec{}, Options{NFT: knftables.NewFake(knftables.IPv4Family, DefaultTable)})
		if err != nil {
			t.Fatal(err)
		}
		b.w = refusingWriter{tc.errno}
		err = b.Sync(context.Background(), nil, snap)
		if !errors.Is(err, backends.ErrApply) {
			t.Errorf("%v: Sync = %v, want ErrApply", tc.errno, err)
		}
		for _, s := range []error{backends.ErrPermission, backends.ErrNotSupported, backends.ErrTimeout} {
			if got := errors.Is(err, s); got != (s == tc.want) {
				t.Errorf("%v: errors.Is(%v) = %v", tc.errno, s, got)
			}
		}
		if got := backends.Classify(err); got != tc.class {
			t.Errorf("%v: Classify = %q, want %q", tc.errno, got, tc.class)
		}
		if !errors.Is(err, tc.errno) {
			t.Errorf("%v: the errno is lost: %v", tc.errno, err)
		}
	}
}
