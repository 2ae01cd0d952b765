package check_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/internal/check"
)

func TestChecks(t *testing.T) {
	good := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for name, err := range map[string]error{
		"invalid address": check.Addresses("b", []netip.Addr{{}}),
		"invalid prefix":  check.Addresses("b", nil, good, []netip.Prefix{{}}),
		"no mark bit":     check.Mark("b", 0),
		"two mark bits":   check.Mark("b", 0x4001),
	} {
		if !errors.Is(err, backends.ErrInvalidConfig) || !strings.HasPrefix(err.Error(), "backends: invalid configuration: b: ") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := check.Addresses("b", []netip.Addr{netip.MustParseAddr("10.0.0.1")}, good); err != nil {
		t.Error(err)
	}
	if err := check.Mark("b", 0x4000); err != nil {
		t.Error(err)
	}
}
