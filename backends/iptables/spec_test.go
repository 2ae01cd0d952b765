package iptables_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// TestInvalidConfig: New refuses, with backends.ErrInvalidConfig, what
// cannot be programmed as it says, and Spec.Validate agrees on the spec;
// what can is accepted.
func TestInvalidConfig(t *testing.T) {
	bad := netip.Prefix{}
	cases := []struct {
		name  string
		spec  iptables.Spec
		opts  iptables.Options
		valid bool
	}{
		{name: "zero values", valid: true},
		{name: "longest prefix", spec: iptables.Spec{Prefix: "KUBE-LB"}, valid: true},
		{name: "trailing dash dropped before counting", spec: iptables.Spec{Prefix: "KUBE_L.-"}, valid: true},
		{name: "trailing dash of a short prefix", spec: iptables.Spec{Prefix: "LB-"}, valid: true},
		{name: "highest mark bit", spec: iptables.Spec{MasqueradeMark: 1 << 31}, valid: true},
		{name: "one restore", opts: iptables.Options{BatchSize: -1}, valid: true},
		{name: "prefix too long", spec: iptables.Spec{Prefix: "LBKITLBK"}},
		{name: "prefix only a dash", spec: iptables.Spec{Prefix: "-"}},
		{name: "prefix starts with a dash", spec: iptables.Spec{Prefix: "-LB"}},
		{name: "prefix with a blank", spec: iptables.Spec{Prefix: "L B"}},
		{name: "prefix with a quote", spec: iptables.Spec{Prefix: `L"B`}},
		{name: "prefix with a bang", spec: iptables.Spec{Prefix: "!LB"}},
		{name: "two mark bits", spec: iptables.Spec{MasqueradeMark: 0x4001}},
		{name: "invalid cluster CIDR", spec: iptables.Spec{ClusterCIDRs: []netip.Prefix{bad}}},
		{name: "a cluster CIDR per family", spec: iptables.Spec{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00::/48")}}, valid: true},
		{name: "two IPv4 cluster CIDRs", spec: iptables.Spec{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("10.245.0.0/16")}}},
		{name: "masquerade all", spec: iptables.Spec{MasqueradeAll: true}, valid: true},
		{name: "invalid node-port CIDR", spec: iptables.Spec{NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), bad}}},
		{name: "negative lock wait", opts: iptables.Options{LockWait: -time.Second}},
		{name: "unknown flavour", opts: iptables.Options{Flavour: "xtables"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Exec = &scripted{}
			if opts.Flavour == iptables.FlavourAuto {
				opts.Flavour = iptables.FlavourLegacy
			}
			b, err := iptables.New(tc.spec, opts)
			if tc.valid {
				if err != nil || b == nil {
					t.Fatalf("New = %v, %v; want a backend", b, err)
				}
				if err := tc.spec.Validate(); err != nil {
					t.Errorf("Validate = %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, backends.ErrInvalidConfig) || b != nil {
				t.Fatalf("New = %v, %v; want an error wrapping ErrInvalidConfig", b, err)
			}
			if c := backends.Classify(err); c != backends.ClassOther {
				t.Errorf("Classify = %q; want %q", c, backends.ClassOther)
			}
			if tc.opts == (iptables.Options{}) && !errors.Is(tc.spec.Validate(), backends.ErrInvalidConfig) {
				t.Errorf("Validate = %v; want an error wrapping ErrInvalidConfig", tc.spec.Validate())
			}
		})
	}
}

// TestLongestPrefixFits: with the longest prefix Validate accepts, every
// chain Render declares fits iptables' 28 characters.
func TestLongestPrefixFits(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	tr.OnServiceAdd(oneService("web", "10.96.0.10"))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "web", "web-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.5", "node")}))
	out := iptables.Render(tr.Snapshot(), iptables.Spec{Prefix: "KUBE-LB"})
	n := 0
	for line := range strings.Lines(out) {
		if name, ok := strings.CutPrefix(line, ":"); ok {
			name, _, _ = strings.Cut(name, " ")
			n++
			if len(name) > 28 {
				t.Errorf("chain %s: %d characters", name, len(name))
			}
		}
	}
	if n == 0 || !strings.Contains(out, ":KUBE-LB-SEP-") {
		t.Fatalf("no endpoint chain declared in:\n%s", out)
	}
}
