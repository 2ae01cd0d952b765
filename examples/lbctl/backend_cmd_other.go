//go:build !linux

package main

import (
	"errors"
	"fmt"
	"io"
)

// runBackendCommand: the kernel backends are Linux's; render (like resolve
// and explain) works everywhere.
func runBackendCommand(cmd string, args []string, stdout, stderr io.Writer) error {
	if cmd == "render" {
		return runRender(args, stdout, stderr)
	}
	return fmt.Errorf("%s needs Linux: the kernel backends are Linux-only", cmd)
}

// runServe: serving needs a Linux data plane.
func runServe(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("serve needs Linux: the backends it runs are Linux-only")
}

// runDiff: the kernel listings it compares are Linux's.
func runDiff(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("diff needs Linux: the kernel backends are Linux-only")
}

var errDiffers = errors.New("the kernel differs from the files")
