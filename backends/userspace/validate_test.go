package userspace_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/userspace"
)

// invalidSpecs cannot mean what they say.
var invalidSpecs = map[string]userspace.Spec{
	"invalid cluster CIDR":    {ClusterCIDRs: []netip.Prefix{{}}},
	"invalid node-port range": {NodePortAddresses: []netip.Prefix{{}}},
	"invalid node IP":         {NodeIPs: []netip.Addr{{}}},
	"table name too long":     {Table: strings.Repeat("t", 256)},
}

func TestSpecValidate(t *testing.T) {
	for name, s := range invalidSpecs {
		if err := s.Validate(); !errors.Is(err, backends.ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", name, err)
		}
	}
	ok := userspace.Spec{NodeIPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")},
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", ok, err)
	}
}
