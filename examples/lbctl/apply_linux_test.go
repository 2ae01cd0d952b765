//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/backends/backendtest"
)

// TestApplyCleanup runs `lbctl apply` twice and `lbctl cleanup` inside a
// throwaway namespace, for each kernel backend on this host: the second
// apply, from a fresh process state, converges to the changed file.
func TestApplyCleanup(t *testing.T) {
	backendtest.Require(t, "ip", "nft", "iptables")
	changed := filepath.Join(t.TempDir(), "changed.yaml")
	// The sample without the web service's second slice.
	sample := strings.Replace(string(sampleYAML), "name: web-def\n  labels:\n    kubernetes.io/service-name: web",
		"name: web-def\n  labels:\n    kubernetes.io/service-name: gone", 1)
	if sample == string(sampleYAML) {
		t.Fatal("sample.yaml changed: cannot detach web-def")
	}
	if err := os.WriteFile(changed, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ backend, list string }{
		{"nftables", "nft list ruleset"},
		{"iptables", "iptables-save"},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 1})
			show := func() string {
				f := strings.Fields(tc.list)
				out, err := n.NodeExec(f[0], f[1:]...)
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			lbctl := func(args ...string) {
				t.Helper()
				var code int
				var errOut string
				if err := n.InNode(func() error {
					_, errOut, code = runLbctl(args...)
					return nil
				}); err != nil || code != 0 {
					t.Fatalf("lbctl %v: exit %d, %v: %s", args, code, err, errOut)
				}
			}
			lbctl("apply", "--backend", tc.backend, "--cluster-cidr", "10.244.0.0/16")
			if got := show(); !strings.Contains(got, "10.244.3.4") {
				t.Fatalf("web endpoint from web-def missing after apply:\n%s", got)
			}
			lbctl("apply", "--backend", tc.backend, "-f", changed, "--cluster-cidr", "10.244.0.0/16")
			if got := show(); strings.Contains(got, "10.244.3.4") || !strings.Contains(got, "10.244.1.5") {
				t.Fatalf("second apply did not converge:\n%s", got)
			}
			lbctl("cleanup", "--backend", tc.backend)
			if got := show(); strings.Contains(strings.ToLower(got), "lbkit") {
				t.Fatalf("cleanup left lbkit objects:\n%s", got)
			}
		})
	}
}
