package main

import (
	"fmt"
	"io"
)

func runDemo(args []string, stdout io.Writer) error {
	return fmt.Errorf("demo: not available yet")
}
