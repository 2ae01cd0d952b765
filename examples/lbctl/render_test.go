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

// TestRenderEveryBackend: render needs no kernel, on any platform; each
// backend prints what it would program for the sample cluster, and the
// same Spec checks as New refuse a bad flag.
func TestRenderEveryBackend(t *testing.T) {
	for backend, want := range map[string]string{
		"nftables":  "table ip lbkit-",
		"iptables":  "*nat",
		"ipvs":      "-A -t ",
		"userspace": "table ip lbkit-userspace",
	} {
		out, errOut, code := runLbctl("render", "--backend", backend)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("render --backend %s: exit %d, output lacks %q (stderr %s)", backend, code, want, errOut)
		}
	}
	if _, _, code := runLbctl("render", "--backend", "ipvs", "--scheduler", "fastest"); code == 0 {
		t.Error("render --scheduler fastest succeeded")
	}
}
