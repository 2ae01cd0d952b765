//go:build linux

package iptables_test

import (
	"testing"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/iptables"
)

// TestConformance runs lbkit's conformance suite, real packets through
// namespaces, against both iptables flavours, in IPv4 (iptables) and IPv6
// (ip6tables) and with the options of each variant (NodePortAddresses, no
// cluster CIDRs).
func TestConformance(t *testing.T) {
	for _, fl := range []iptables.Flavour{iptables.FlavourNFT, iptables.FlavourLegacy} {
		t.Run(string(fl), func(t *testing.T) {
			backendtest.Run(t, func(t *testing.T, n *backendtest.Network) backends.Interface {
				b, err := iptables.New(iptables.Spec{ClusterCIDRs: n.ClusterCIDRs(), MasqueradeAll: n.MasqueradeAll(), NodePortAddresses: n.NodePortAddresses()}, iptables.Options{Flavour: fl})
				if err != nil {
					t.Fatal(err)
				}
				return b
			}, backendtest.SuiteOptions{Parallel: true, Require: []string{
				"iptables-" + string(fl) + "-restore", "ip6tables-" + string(fl) + "-restore",
			}})
		})
	}
}
