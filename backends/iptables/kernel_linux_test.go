//go:build linux

package iptables_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// TestKernelRestore loads every golden scenario into a real kernel (inside
// a throwaway namespace), in both iptables flavours: a full restore, a
// partial one, a recovery from an outside flush, and a Cleanup that leaves
// a foreign chain alone.
func TestKernelRestore(t *testing.T) {
	for _, flavour := range []iptables.Flavour{iptables.FlavourNFT, iptables.FlavourLegacy} {
		t.Run(string(flavour), func(t *testing.T) {
			backendtest.Require(t, "ip", "iptables-"+string(flavour)+"-restore")
			n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 1})
			ipt := "iptables-" + string(flavour)
			save := func() string {
				out, err := n.NodeExec(ipt+"-save", "-t", "nat")
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			if _, err := n.NodeExec(ipt, "-t", "nat", "-N", "OTHER-CHAIN"); err != nil {
				t.Fatal(err)
			}
			b, err := iptables.New(iptables.Spec{}, iptables.Options{Flavour: flavour})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
			for _, setup := range scenarios() {
				setup(tr) // the IPv6 scenario's objects are ignored by this IPv4 tracker
			}
			s1 := tr.Snapshot()
			sync := func(prev, next *servicemap.Snapshot) {
				t.Helper()
				if err := n.InNode(func() error { return b.Sync(ctx, prev, next) }); err != nil {
					t.Fatal(err)
				}
			}
			sync(nil, s1)
			if got := save(); !strings.Contains(got, `-A LBKIT-SVC-`) || !strings.Contains(got, `"default/web:http -> 10.244.1.10:8080"`) {
				t.Fatalf("rules missing after full sync:\n%s", got)
			}
			// Partial: one endpoint goes away.
			tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("default", "web", "web-1", http8080, []servicemaptest.Endpoint{
				servicemaptest.Ready("10.244.1.10", "node"), servicemaptest.Ready("10.244.1.11", "other"),
			}))
			s2 := tr.Snapshot()
			sync(s1, s2)
			if got := save(); strings.Contains(got, "10.244.1.12:8080") {
				t.Fatalf("removed endpoint still programmed:\n%s", got)
			}
			// An outside flush is noticed and repaired.
			if _, err := n.NodeExec(ipt, "-t", "nat", "-F"); err != nil {
				t.Fatal(err)
			}
			sync(s2, s2)
			if got := save(); !strings.Contains(got, "-A PREROUTING -m comment --comment \"lbkit service portals\" -j LBKIT-SERVICES") ||
				!strings.Contains(got, "10.244.1.11:8080") {
				t.Fatalf("flushed rules not restored:\n%s", got)
			}
			if err := n.InNode(func() error { return b.Cleanup(ctx) }); err != nil {
				t.Fatal(err)
			}
			got := save()
			if strings.Contains(got, "LBKIT") {
				t.Errorf("lbkit rules left after Cleanup:\n%s", got)
			}
			if !strings.Contains(got, ":OTHER-CHAIN") {
				t.Errorf("Cleanup removed a foreign chain:\n%s", got)
			}
		})
	}
}

// TestKernelAcceptsRender gives every golden case, rendered with its
// options, to the real iptables-restore (ip6tables-restore for IPv6) of
// both flavours with --test, inside a throwaway namespace: what Render
// writes must be what the tools accept.
func TestKernelAcceptsRender(t *testing.T) {
	for _, flavour := range []iptables.Flavour{iptables.FlavourNFT, iptables.FlavourLegacy} {
		t.Run(string(flavour), func(t *testing.T) {
			backendtest.Require(t, "ip", "iptables-"+string(flavour)+"-restore", "ip6tables-"+string(flavour)+"-restore")
			n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 1})
			for name, setup := range scenarios() {
				restore := "iptables-" + string(flavour) + "-restore"
				if name == "ipv6" {
					restore = "ip6" + restore[2:]
				}
				rules := iptables.Render(snapshotOf(name, setup), goldenSpec(name))
				err := n.InNode(func() error {
					cmd := exec.Command(restore, "-w", "--noflush", "--test")
					cmd.Stdin = strings.NewReader(rules)
					if out, err := cmd.CombinedOutput(); err != nil {
						return fmt.Errorf("%w: %s", err, out)
					}
					return nil
				})
				if err != nil {
					t.Errorf("%s: %s refuses the rendered rules: %v", name, restore, err)
				}
			}
		})
	}
}
