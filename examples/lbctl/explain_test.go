package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestExplainGolden runs lbctl explain on the sample and on the topology
// cases, as a table and as JSON.
func TestExplainGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"explain-web.golden", []string{"explain", "default/web"}},
		{"explain-web-json.golden", []string{"explain", "default/web", "-o", "json"}},
		{"explain-draining.golden", []string{"explain", "default/draining:http"}},
		{"explain-shop-from.golden", []string{"explain", "default/shop", "--from", "10.244.1.77", "--cluster-cidr", "10.244.0.0/16", "--backend", "iptables-render"}},
		{"explain-shop-from-masquerade-all.golden", []string{"explain", "default/shop", "--from", "10.244.1.77", "--cluster-cidr", "10.244.0.0/16", "--masquerade-all"}},
		{"explain-cart.golden", []string{"explain", "shop/cart", "-f", "testdata/topology.yaml", "--from", "203.0.113.9", "--cluster-cidr", "10.244.0.0/16"}},
		{"explain-cart-json.golden", []string{"explain", "shop/cart", "-f", "testdata/topology.yaml", "-o", "json"}},
		{"explain-drain.golden", []string{"explain", "-f", "testdata/topology.yaml", "shop/drain", "--from", "10.244.1.77", "--cluster-cidr", "10.244.0.0/16", "--backend", "nftables-render"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			args := tc.args
			// The *-render backends describe a backend's choice without
			// reading any kernel (no root needed).
			for i, a := range args {
				args[i] = strings.TrimSuffix(a, "-render")
			}
			out, errOut, code := runLbctlNoKernel(args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if strings.HasSuffix(tc.golden, "-json.golden") && !json.Valid([]byte(out)) {
				t.Fatalf("not JSON:\n%s", out)
			}
			checkGolden(t, tc.golden, out)
		})
	}
}

func TestExplainErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"explain"}, 2, "explain needs NAMESPACE/NAME"},
		{[]string{"explain", "default/nope"}, 1, "no Service default/nope"},
		{[]string{"explain", "default/web:nope"}, 1, `no port "nope"`},
		{[]string{"explain", "default/web", "--from", "x"}, 2, "not an IP address"},
		{[]string{"explain", "default/web", "--backend", "pf"}, 2, "--backend must be"},
	} {
		_, errOut, code := runLbctl(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("lbctl %v: exit %d, %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

// TestHelp: every command's help exits 0 on standard output with its flags.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, _, code := runLbctl(args...)
		if code != 0 || !strings.Contains(out, "lbctl explain") || !strings.Contains(out, "userspace") {
			t.Errorf("lbctl %v: exit %d:\n%s", args, code, out)
		}
	}
	for _, cmd := range commandOrder {
		if cmd == "completion" {
			continue
		}
		for _, args := range [][]string{{"help", cmd}, {cmd, "--help"}} {
			out, errOut, code := runLbctl(args...)
			if code != 0 || !strings.Contains(out, "lbctl "+cmd) || !strings.Contains(out, "flags:") {
				t.Errorf("lbctl %v: exit %d:\n%s%s", args, code, out, errOut)
			}
		}
	}
	if out, _, _ := runLbctl("render", "--help"); !strings.Contains(out, "-shards") || !strings.Contains(out, "-scheduler") || !strings.Contains(out, "-node-ips") {
		t.Errorf("render --help lacks flags:\n%s", out)
	}
	if _, _, code := runLbctl("help", "nope"); code != 2 {
		t.Errorf("help of an unknown command: exit %d, want 2", code)
	}
	for _, shell := range []string{"bash", "zsh"} {
		out, _, code := runLbctl("completion", shell)
		if code != 0 || !strings.Contains(out, "explain") {
			t.Errorf("completion %s: exit %d:\n%s", shell, code, out)
		}
	}
}

func TestEverydayWarnings(t *testing.T) {
	_, errOut, code := runLbctl("-f", "/nonexistent/cluster.yaml")
	if code != 1 || strings.Count(errOut, "/nonexistent/cluster.yaml") != 1 {
		t.Errorf("a missing file: exit %d, %q; want exit 1 naming the path once", code, errOut)
	}
	out, _, _ := runLbctl("--node", "node-z")
	if !strings.Contains(out, "--node node-z: no Node of that name in the input") {
		t.Errorf("--node naming an absent Node: no warning in\n%s", out)
	}
	out, _, _ = runLbctl("--ip-family", "IPv6")
	if !strings.Contains(out, "--ip-family IPv6: 7 of 9 services have no IPv6 cluster IP") {
		t.Errorf("--ip-family IPv6 on an IPv4 cluster: no count in\n%s", out)
	}
}

// runLbctlNoKernel is runLbctl with explain reading no kernel.
func runLbctlNoKernel(args ...string) (string, string, int) {
	readKernel = false
	defer func() { readKernel = true }()
	return runLbctl(args...)
}
