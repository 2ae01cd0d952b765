//go:build !linux

package ipvs

import (
	"fmt"
	"runtime"

	"github.com/lbkit/lbkit/backends"
)

type kernel struct {
	ipvs  Handle
	host  Host
	close func()
}

func openKernel() (*kernel, error) {
	return nil, fmt.Errorf("%w: ipvs: IPVS is Linux only (running on %s)", backends.ErrUnsupported, runtime.GOOS)
}
