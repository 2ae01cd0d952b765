package endpoints_test

import (
	"testing"

	"github.com/lbkit/lbkit/endpoints"
)

// TestSloppyLikeKubernetes pins inputs where Kubernetes' ParseIPSloppy and
// ParseCIDRSloppy are more lenient than netip, or read IPv4-mapped
// addresses specially.
func TestSloppyLikeKubernetes(t *testing.T) {
	addrs := map[string]string{
		"0010.1.2.3":         "10.1.2.3",
		"000000000001.2.3.4": "1.2.3.4",
		"::ffff:010.1.2.3":   "10.1.2.3",
		"::ffff:10.1.2.3":    "10.1.2.3",
	}
	for in, want := range addrs {
		if got, ok := endpoints.ParseAddr(in); !ok || got.String() != want {
			t.Errorf("ParseAddr(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
	prefixes := map[string]string{
		"10.0.0.1/0008":       "10.0.0.0/8",
		"::ffff:10.0.0.1/8":   "::/8",
		"::ffff:10.0.0.0/104": "10.0.0.0/8",
	}
	for in, want := range prefixes {
		if got, ok := endpoints.ParsePrefix(in); !ok || got.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, got, ok, want)
		}
	}
}
