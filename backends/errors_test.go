//go:build unix

package backends_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/lbkit/lbkit/backends"
)

func TestClassifyAndWithCause(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		class backends.ErrorClass
		is    error // the sentinel WithCause adds, if any
	}{
		{"nil", nil, backends.ClassNone, nil},
		{"EPERM", os.NewSyscallError("sendmsg", syscall.EPERM), backends.ClassPermission, backends.ErrPermission},
		{"EACCES", &fs.PathError{Op: "open", Path: "/proc/sys/x", Err: syscall.EACCES}, backends.ClassPermission, backends.ErrPermission},
		{"ENOSYS", syscall.ENOSYS, backends.ClassNotSupported, backends.ErrNotSupported},
		{"EOPNOTSUPP", fmt.Errorf("netlink: %w", syscall.EOPNOTSUPP), backends.ClassNotSupported, backends.ErrNotSupported},
		{"EPROTONOSUPPORT", os.NewSyscallError("socket", syscall.EPROTONOSUPPORT), backends.ClassNotSupported, backends.ErrNotSupported},
		{"EAFNOSUPPORT", syscall.EAFNOSUPPORT, backends.ClassNotSupported, backends.ErrNotSupported},
		{"program missing", &exec.Error{Name: "nft", Err: exec.ErrNotFound}, backends.ClassNotSupported, backends.ErrNotSupported},
		{"deadline", fmt.Errorf("run: %w", context.DeadlineExceeded), backends.ClassTimeout, backends.ErrTimeout},
		{"sentinel timeout", backends.ErrTimeout, backends.ClassTimeout, nil},
		{"apply", fmt.Errorf("%w: table busy", backends.ErrApply), backends.ClassApply, nil},
		{"apply with EINVAL", fmt.Errorf("%w: %w", backends.ErrApply, syscall.EINVAL), backends.ClassApply, nil},
		{"invalid configuration", fmt.Errorf("%w: prefix too long", backends.ErrInvalidConfig), backends.ClassOther, nil},
		{"apply because EPERM", fmt.Errorf("%w: %w", backends.ErrApply, syscall.EPERM), backends.ClassPermission, backends.ErrPermission},
		{"panic", &backends.PanicError{Value: "boom"}, backends.ClassPanic, nil},
		{"panic with an error", fmt.Errorf("sync: %w", &backends.PanicError{Value: backends.ErrApply}), backends.ClassPanic, nil},
		{"other", errors.New("something"), backends.ClassOther, nil},
		{"canceled", context.Canceled, backends.ClassOther, nil},
	} {
		if got := backends.Classify(tc.err); got != tc.class {
			t.Errorf("%s: Classify = %q, want %q", tc.name, got, tc.class)
		}
		w := backends.WithCause(tc.err)
		if tc.err == nil {
			if w != nil {
				t.Errorf("WithCause(nil) = %v", w)
			}
			continue
		}
		if w.Error() != tc.err.Error() || !errors.Is(w, tc.err) {
			t.Errorf("%s: WithCause changed the error: %q", tc.name, w)
		}
		if tc.is != nil && !errors.Is(w, tc.is) {
			t.Errorf("%s: WithCause = %v, not Is %v", tc.name, w, tc.is)
		}
		if tc.is == nil && w != tc.err {
			t.Errorf("%s: WithCause wrapped an error with no cause to add", tc.name)
		}
		if got := backends.Classify(w); got != tc.class {
			t.Errorf("%s: Classify(WithCause) = %q, want %q", tc.name, got, tc.class)
		}
	}
	if !errors.Is(backends.ErrUnsupported, backends.ErrNotSupported) {
		t.Error("ErrUnsupported is not ErrNotSupported")
	}
}
