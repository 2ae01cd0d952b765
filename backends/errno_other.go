//go:build !unix

package backends

func unsupportedErrno(error) bool { return false }
