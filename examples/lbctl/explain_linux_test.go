//go:build linux

package main

import (
	"strings"
	"testing"

	"github.com/lbkit/lbkit/backends/backendtest"
)

// TestExplainReadsKernel applies the sample with each kernel backend in a
// throwaway namespace, then explain --backend shows the rules that
// implement the service, read back from the kernel.
func TestExplainReadsKernel(t *testing.T) {
	backendtest.Require(t, "ip", "nft", "iptables")
	for _, tc := range []struct {
		backend string
		want    []string
	}{
		{"nftables", []string{"chain svc-default/web/http/tcp", "dnat to 10.244.1.5:8080", "element", "10.96.0.10 . tcp . 80 : goto svc-default/web/http/tcp"}},
		{"iptables", []string{`"default/web:http cluster IP"`, "DNAT --to-destination 10.244.1.5:8080"}},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 1})
			var out, errOut string
			var code int
			n.InNode(func() error {
				if _, errOut, code = runLbctl("apply", "--backend", tc.backend); code != 0 {
					return nil
				}
				out, errOut, code = runLbctl("explain", "default/web", "--backend", tc.backend)
				runLbctl("cleanup", "--backend", tc.backend)
				return nil
			})
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			kernel := out[strings.Index(out, "in the kernel:"):]
			for _, w := range tc.want {
				if !strings.Contains(kernel, w) {
					t.Errorf("explain --backend %s lacks %q:\n%s", tc.backend, w, kernel)
				}
			}
		})
	}
}
