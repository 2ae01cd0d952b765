package main

import (
	"fmt"
	"io"
)

// runBackendCommand runs render, apply, cleanup and demo.
func runBackendCommand(cmd string, args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("%s: not available yet", cmd)
}
