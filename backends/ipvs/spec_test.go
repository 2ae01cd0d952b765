package ipvs_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/ipvs"
)

// specCases are specs Validate (and New) accept or refuse.
var specCases = []struct {
	name  string
	spec  ipvs.Spec
	valid bool
}{
	{name: "zero value", valid: true},
	{name: "longest interface name", spec: ipvs.Spec{Interface: "lbkit.ipvs_0-ab"}, valid: true},
	{name: "table with path characters", spec: ipvs.Spec{Table: "_lb/ipvs.v2-a"}, valid: true},
	{name: "longest table name", spec: ipvs.Spec{Table: strings.Repeat("t", 255)}, valid: true},
	{name: "lowest mark bit", spec: ipvs.Spec{MasqueradeMark: 1}, valid: true},
	{name: "node IPs of both families", spec: ipvs.Spec{NodeIPs: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fd00::1")}}, valid: true},
	{name: "interface name too long", spec: ipvs.Spec{Interface: "lbkit-ipvs-0123" + "4"}},
	{name: "interface name with a blank", spec: ipvs.Spec{Interface: "lb ipvs"}},
	{name: "unknown scheduler", spec: ipvs.Spec{Scheduler: "fastest"}},
	{name: "table starting with a digit", spec: ipvs.Spec{Table: "1lbkit"}},
	{name: "table name too long", spec: ipvs.Spec{Table: strings.Repeat("t", 256)}},
	{name: "table with a blank", spec: ipvs.Spec{Table: "lbkit ipvs"}},
	{name: "invalid cluster CIDR", spec: ipvs.Spec{ClusterCIDRs: []netip.Prefix{{}}}},
	{name: "invalid node-port CIDR", spec: ipvs.Spec{NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}}}},
	{name: "invalid node IP", spec: ipvs.Spec{NodeIPs: []netip.Addr{netip.MustParseAddr("10.0.0.1"), {}}}},
	{name: "two mark bits", spec: ipvs.Spec{MasqueradeMark: 0x4001}},
}

// TestSpecValidate: Validate refuses, with backends.ErrInvalidConfig, a
// spec that cannot be programmed as it says, and accepts the others (New
// agrees: TestNewInvalidSpec).
func TestSpecValidate(t *testing.T) {
	for _, tc := range specCases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if tc.valid {
				if err != nil {
					t.Fatalf("Validate = %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, backends.ErrInvalidConfig) {
				t.Fatalf("Validate = %v; want an error wrapping ErrInvalidConfig", err)
			}
			if c := backends.Classify(err); c != backends.ClassOther {
				t.Errorf("Classify = %q; want %q", c, backends.ClassOther)
			}
		})
	}
}
