package backends

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
)

// Errors shared by backends; test with errors.Is. A backend's Sync error
// wraps ErrApply and, when the cause is known, one of ErrPermission,
// ErrNotSupported or ErrTimeout as well (see WithCause); Classify turns
// either kind into a short class for health reports and metrics.
var (
	// ErrPermission: the process lacks a privilege the data plane needs
	// (CAP_NET_ADMIN, root).
	ErrPermission = errors.New("backend not permitted")
	// ErrNotSupported: the kernel or system lacks something the backend
	// needs (a module, a protocol family, a program).
	ErrNotSupported = errors.New("backend not supported on this system")
	// ErrApply: the data plane did not take a change; the previous state
	// is kept as far as the data plane allows, and the next sync should
	// be a full one. Every Sync failure of lbkit's backends wraps it.
	ErrApply = errors.New("backend apply failed")
	// ErrTimeout: a sync, or a wait it made (for a lock), ran out of
	// time.
	ErrTimeout = errors.New("backend timed out")
	// ErrInvalidConfig: a backend's Spec or Options ask for something
	// that cannot be programmed as they say; New and Spec.Validate return
	// it, wrapped with what is wrong. Classify counts it as ClassOther.
	ErrInvalidConfig = errors.New("backends: invalid configuration")

	// ErrUnsupported is the old name of ErrNotSupported.
	//
	// Deprecated: use ErrNotSupported, the same value.
	ErrUnsupported = ErrNotSupported
)

// ErrorClass is a short, stable name for the kind of a sync error: what
// /healthz shows on a port anyone can reach, instead of the error's text,
// and a label value for metrics.
type ErrorClass string

// Error classes, as Classify returns them.
const (
	ClassNone         ErrorClass = ""              // no error
	ClassPermission   ErrorClass = "permission"    // ErrPermission, EPERM, EACCES
	ClassNotSupported ErrorClass = "not-supported" // ErrNotSupported, ENOSYS, EOPNOTSUPP
	ClassTimeout      ErrorClass = "timeout"       // ErrTimeout, a context deadline
	ClassPanic        ErrorClass = "panic"         // a *PanicError
	ClassApply        ErrorClass = "apply"         // ErrApply, with no cause above
	ClassOther        ErrorClass = "other"         // anything else
)

// Classify returns the class of err, checking the classes in the order of
// the constants above: an error wrapping both ErrPermission and ErrApply
// is a permission error. System errors count even when no backend wrapped
// them in a sentinel (so a user's backend is classified too).
func Classify(err error) ErrorClass {
	if err == nil {
		return ClassNone
	}
	var pe *PanicError
	switch {
	case errors.As(err, &pe):
		return ClassPanic
	case errors.Is(err, ErrPermission) || errors.Is(err, fs.ErrPermission):
		return ClassPermission
	case errors.Is(err, ErrNotSupported) || errors.Is(err, errors.ErrUnsupported) ||
		errors.Is(err, exec.ErrNotFound) || unsupportedErrno(err):
		return ClassNotSupported
	case errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	case errors.Is(err, ErrApply):
		return ClassApply
	}
	return ClassOther
}

// WithCause returns err wrapped so that errors.Is also finds the sentinel
// its cause implies: ErrPermission for EPERM and EACCES (fs.ErrPermission),
// ErrNotSupported for ENOSYS, EOPNOTSUPP, EAFNOSUPPORT, EPROTONOSUPPORT or
// a program not found, ErrTimeout for a passed context deadline. Its text
// is err's. An err with none of these causes, or one that already wraps the
// sentinel, is returned as it is; nil stays nil. Backends call it on what
// the kernel or a system program returned.
func WithCause(err error) error {
	if err == nil {
		return nil
	}
	var cause error
	switch Classify(err) {
	case ClassPermission:
		cause = ErrPermission
	case ClassNotSupported:
		cause = ErrNotSupported
	case ClassTimeout:
		cause = ErrTimeout
	}
	if cause == nil || errors.Is(err, cause) {
		return err
	}
	return &causeError{cause: cause, err: err}
}

type causeError struct{ cause, err error }

func (e *causeError) Error() string   { return e.err.Error() }
func (e *causeError) Unwrap() []error { return []error{e.cause, e.err} }

// ErrNoHasSynced is returned by Run when RunnerOptions has neither
// HasSynced nor NoWaitForSync: a first sync that does not wait for the
// informers programs a half-listed (or empty) cluster, wiping what a
// previous process programmed.
var ErrNoHasSynced = errors.New("backends: RunnerOptions.HasSynced is empty; pass the event handler registrations' HasSynced, or set NoWaitForSync")

// PanicError is the error of a sync (or drift check) that panicked: the
// Runner recovers the panic, logs Stack, and treats the sync as failed.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack (runtime/debug.Stack)
}

func (e *PanicError) Error() string { return fmt.Sprintf("backend panicked: %v", e.Value) }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
