//go:build linux

package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/backends/backendtest"
)

// TestDiff: after `lbctl apply`, `lbctl diff` exits 0; when someone
// flushes one service's rules or deletes one map element, it exits 1 and
// names that service (and no other); `apply` again brings it back to 0.
// For each kernel backend on this host.
func TestDiff(t *testing.T) {
	backendtest.Require(t, "ip", "nft", "iptables")
	for _, tc := range []struct {
		backend string
		damage  []func(n *backendtest.Network) (service string, err error)
	}{
		{"nftables", []func(n *backendtest.Network) (string, error){
			// Flush the chain of default/web's endpoints.
			func(n *backendtest.Network) (string, error) {
				table, chain, err := nftChainOf(n, "svc-default/web/http/tcp-")
				if err != nil {
					return "", err
				}
				_, err = n.NodeExec("nft", "flush", "chain", "ip", table, chain)
				return "default/web/http/tcp", err
			},
			// Delete the dispatch element of kube-system/dns's UDP port.
			func(n *backendtest.Network) (string, error) {
				table, _, err := nftChainOf(n, "svc-kube-system/dns/dns/udp-")
				if err != nil {
					return "", err
				}
				_, err = n.NodeExec("nft", "delete", "element", "ip", table, "service-ips", "{ 10.96.0.53 . udp . 53 }")
				return "kube-system/dns/dns/udp", err
			},
		}},
		{"iptables", []func(n *backendtest.Network) (string, error){
			// Flush the service chain of default/web.
			func(n *backendtest.Network) (string, error) {
				out, err := n.NodeExec("iptables-save", "-t", "nat")
				if err != nil {
					return "", err
				}
				m := regexp.MustCompile(`"default/web:http cluster IP".* -j (LBKIT-SVC-\S+)`).FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("no service chain for default/web:http in\n%s", out)
				}
				_, err = n.NodeExec("iptables", "-t", "nat", "-F", m[1])
				return "default/web:http", err
			},
		}},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 1})
			lbctl := func(args ...string) (string, string, int) {
				t.Helper()
				var out, errOut string
				var code int
				if err := n.InNode(func() error {
					out, errOut, code = runLbctl(args...)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				return out, errOut, code
			}
			apply := func() {
				t.Helper()
				if _, errOut, code := lbctl("apply", "--backend", tc.backend); code != 0 {
					t.Fatalf("apply: exit %d: %s", code, errOut)
				}
			}
			clean := func(why string) {
				t.Helper()
				if out, errOut, code := lbctl("diff", "--backend", tc.backend); code != 0 || !strings.Contains(out, "matches") {
					t.Fatalf("diff %s: exit %d:\n%s%s", why, code, out, errOut)
				}
			}
			apply()
			clean("right after apply")
			for _, damage := range tc.damage {
				service, err := damage(n)
				if err != nil {
					t.Fatal(err)
				}
				out, errOut, code := lbctl("diff", "--backend", tc.backend)
				if code != 1 {
					t.Fatalf("diff after damaging %s: exit %d, want 1:\n%s%s", service, code, out, errOut)
				}
				var named []string
				for _, l := range strings.Split(out, "\n") {
					if strings.HasPrefix(l, "service ") {
						named = append(named, l)
					}
				}
				if len(named) != 1 || !strings.HasPrefix(named[0], "service "+service+":") {
					t.Errorf("diff after damaging %s names %q, want that service only:\n%s", service, named, out)
				}
				apply()
				clean("after apply repaired " + service)
			}
			if _, errOut, code := lbctl("diff", "--backend", "ipvs"); code != 2 {
				t.Errorf("diff --backend ipvs: exit %d, want 2 (usage): %s", code, errOut)
			}
		})
	}
}

// nftChainOf finds the table and full name of the chain whose name starts
// with prefix.
func nftChainOf(n *backendtest.Network, prefix string) (table, chain string, err error) {
	out, err := n.NodeExec("nft", "list", "ruleset")
	if err != nil {
		return "", "", err
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "table":
			table = f[2]
		case len(f) >= 2 && f[0] == "chain" && strings.HasPrefix(f[1], prefix):
			return table, f[1], nil
		}
	}
	return "", "", nil
}
