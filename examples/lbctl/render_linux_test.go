//go:build linux

package main

import (
	"strings"
	"testing"
)

// TestRenderIPTablesShowsJumps: the iptables render shows how packets reach
// lbkit's chains, from every built-in chain Sync hooks.
func TestRenderIPTablesShowsJumps(t *testing.T) {
	out, errOut, code := runLbctl("render", "--backend", "iptables")
	if code != 0 {
		t.Fatalf("render: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"-t nat -A PREROUTING", "-t nat -A OUTPUT", "-t nat -A POSTROUTING",
		"-t filter -A INPUT", "-t filter -A FORWARD", "-t filter -A OUTPUT",
		"-j LBKIT-SERVICES", "-j LBKIT-FIREWALL",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("render --backend iptables lacks %q", want)
		}
	}
}
