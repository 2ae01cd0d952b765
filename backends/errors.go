package backends

import "errors"

// Errors shared by backends; test with errors.Is.
var (
	// ErrUnsupported: the kernel or system lacks something the backend
	// needs (a module, a tool, a privilege).
	ErrUnsupported = errors.New("backend not supported on this system")
	// ErrApply: the data plane rejected a change; the previous state is
	// kept and the next sync should be a full one.
	ErrApply = errors.New("backend apply failed")
)
