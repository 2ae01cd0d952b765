//go:build unix

package backends

import (
	"errors"
	"syscall"
)

// unsupportedErrno reports a system error that means the kernel lacks a
// protocol or address family (a module not loaded or not built), which
// errors.ErrUnsupported does not cover.
func unsupportedErrno(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EPROTONOSUPPORT)
}
