//go:build linux

package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/backends/backendtest"
)

// TestDemo runs `lbctl demo` for real (root): every pod answers while all
// are ready, and the not-ready pod gets nothing after the next sync.
func TestDemo(t *testing.T) {
	backendtest.Require(t, "ip", "nft", "iptables")
	for _, backend := range []string{"nftables", "iptables"} {
		t.Run(backend, func(t *testing.T) {
			out, errOut, code := runLbctl("demo", "--backend", backend)
			if code != 0 {
				t.Fatalf("exit %d: %s\n%s", code, errOut, out)
			}
			rounds := strings.Split(out, "b0 not ready")
			if len(rounds) != 2 {
				t.Fatalf("unexpected output:\n%s", out)
			}
			line := regexp.MustCompile(`(?m)^\s+(b\d|failed)\s+(\d+)`)
			first := line.FindAllStringSubmatch(rounds[0], -1)
			second := line.FindAllStringSubmatch(rounds[1], -1)
			if len(first) != 3 || len(second) != 2 {
				t.Fatalf("want 3 pods then 2, got %v then %v:\n%s", first, second, out)
			}
			for _, m := range second {
				if m[1] == "b0" || m[1] == "failed" {
					t.Errorf("after b0 turned not ready: %s got %s connections", m[1], m[2])
				}
			}
		})
	}
}
