//go:build !linux

package main

import (
	"fmt"

	"github.com/lbkit/lbkit/servicemap"
)

// kernelRules: reading the kernel's rules needs Linux.
func kernelRules(backend string, p *servicemap.ServicePort) ([]string, error) {
	return nil, fmt.Errorf("explain --backend needs Linux")
}
