//go:build linux

package nftables_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends/nftables"
)

// TestNetlinkRoundTrip loads every golden ruleset twice, in two throwaway
// namespaces: through the netlink writer, and as text through nft. What nft
// lists back must be the same. Then the same small update (an element
// deleted, a chain flushed and refilled) goes through the writer on one side
// and through knftables (nft) on the other, and again the tables must match.
func TestNetlinkRoundTrip(t *testing.T) {
	requireKernel(t)
	ctx := context.Background()
	for i, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			family, nftFamily := tc.family, knftables.IPv4Family
			if family == "" {
				family = v1.IPv4Protocol
			}
			v6 := family == v1.IPv6Protocol
			if v6 {
				nftFamily = knftables.IPv6Family
			}
			snap := tc.objs.snapshot(t, family)
			golden, err := os.ReadFile(filepath.Join("testdata", tc.name+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			table, churn := nftables.ChurnOpsForTest(snap, tc.opts)
			// The text nft prints, then the bytecode it reads back.
			list := func() string {
				return run(t, "nft", "list", "ruleset") + "\n" +
					normalizeBytecode(run(t, "nft", "--debug=netlink", "list", "ruleset"))
			}

			var viaNetlink, viaNFT [2]string
			inThrowawayNetns(t, fmt.Sprintf("nlrt-a-%d", i), func() {
				if err := nftables.ApplyNetlinkForTest(snap, tc.opts); err != nil {
					t.Fatal(err)
				}
				viaNetlink[0] = list()
				if err := nftables.RunNetlinkForTest(ctx, v6, table, churn); err != nil {
					t.Fatal(err)
				}
				viaNetlink[1] = list()
			})
			inThrowawayNetns(t, fmt.Sprintf("nlrt-b-%d", i), func() {
				runStdin(t, string(golden), "nft", "-f", "-")
				viaNFT[0] = list()
				nft, err := knftables.New(nftFamily, table)
				if err != nil {
					t.Fatal(err)
				}
				tx := nft.NewTransaction()
				churn.Fill(tx, v6)
				if err := nft.Run(ctx, tx); err != nil {
					t.Fatal(err)
				}
				viaNFT[1] = list()
			})
			if diff := cmp.Diff(viaNFT[0], viaNetlink[0]); diff != "" {
				t.Errorf("table loaded through netlink differs from the golden file loaded by nft (-nft +netlink):\n%s", diff)
			}
			if diff := cmp.Diff(viaNFT[1], viaNetlink[1]); diff != "" {
				t.Errorf("after the update, the tables differ (-nft +netlink):\n%s", diff)
			}
			if viaNFT[0] == viaNFT[1] {
				t.Errorf("the update changed nothing")
			}
		})
	}
}

// normalizeBytecode makes `nft --debug=netlink list` output comparable
// between namespaces: rule handles go (they count every object the table
// was given, in the order it was given them), and elements are sorted (a
// hash set lists them in the order of a hash with a random seed).
func normalizeBytecode(out string) string {
	var b strings.Builder
	var elems []string
	flush := func() {
		slices.Sort(elems)
		for _, e := range elems {
			b.WriteString(e + "\n")
		}
		elems = elems[:0]
	}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "\telement "):
			elems = append(elems, line)
			continue
		case strings.HasPrefix(line, "ip ") || strings.HasPrefix(line, "ip6 "):
			flush()
			if f := strings.Fields(line); len(f) > 3 && !strings.HasPrefix(f[2], "@") {
				line = strings.Join(f[:3], " ") // family table chain [handle [position]]
			}
		default:
			flush()
		}
		b.WriteString(line + "\n")
	}
	flush()
	return b.String()
}

// TestNetlinkLargeBatch sends one batch as large as a cold sync's: a chain
// of 25,000 rules and a verdict map of 25,000 elements pointing at it.
func TestNetlinkLargeBatch(t *testing.T) {
	requireKernel(t)
	const n = 25000
	inThrowawayNetns(t, "nlbig", func() {
		ops := &nftables.NetlinkOps{}
		ops.AddTable()
		ops.AddChain("big")
		ops.AddSet("big-map", true, false, "ipv4_addr", "inet_proto", "inet_service")
		for i := range n {
			ops.AddRandomDNAT("big", 2, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 244, byte(i / 250), byte(i % 250)}), 8080))
		}
		for i := range n {
			ops.AddElement("big-map", fmt.Sprintf("10.96.%d.%d . tcp . 80", i/250, i%250), "goto big")
		}
		start := time.Now()
		if err := nftables.RunNetlinkForTest(context.Background(), false, "lbkit", ops); err != nil {
			t.Fatal(err)
		}
		t.Logf("one batch of %d operations: %v", ops.Len(), time.Since(start))
		if got := strings.Count(run(t, "nft", "list", "chain", "ip", "lbkit", "big"), "dnat to"); got != n {
			t.Errorf("chain big has %d rules, want %d", got, n)
		}
		if got := strings.Count(run(t, "nft", "list", "map", "ip", "lbkit", "big-map"), ": goto big"); got != n {
			t.Errorf("map big-map has %d elements, want %d", got, n)
		}
	})
}

// TestNetlinkColdSyncBatch times one run as large as a cold sync's batch
// of 1,800 service ports with 10 endpoints each: ~20,000 rules.
func TestNetlinkColdSyncBatch(t *testing.T) {
	requireKernel(t)
	snap := cluster(1800, 10).snapshot(t, v1.IPv4Protocol)
	opts := podCIDRs // one table
	runs := nftables.NetlinkRunsForTest(snap, opts)
	if len(runs) != 1 {
		t.Fatalf("%d tables, want 1", len(runs))
	}
	r := runs[0]
	start := time.Now()
	if err := r.Ports.TranslateForTest(false, r.Table); err != nil {
		t.Fatal(err)
	}
	translate := time.Since(start)
	inThrowawayNetns(t, "nlcold", func() {
		ctx := context.Background()
		if err := nftables.RunNetlinkForTest(ctx, false, r.Table, r.Setup); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := nftables.RunNetlinkForTest(ctx, false, r.Table, r.Ports); err != nil {
			t.Fatal(err)
		}
		t.Logf("one run of %d operations (%d rules): %v, of which building the batch %v",
			r.Ports.Len(), r.Ports.Rules(), time.Since(start), translate)
		if got := strings.Count(run(t, "nft", "list", "chain", "ip", r.Table, "services"), "vmap"); got != 2 {
			t.Errorf("services chain has %d vmap rules, want 2", got)
		}
	})
	// For comparison: nft loading the same table (skeleton included) from
	// text.
	text := nftables.Render(snap, opts)
	inThrowawayNetns(t, "nlcold-nft", func() {
		start := time.Now()
		runStdin(t, text, "nft", "-f", "-")
		t.Logf("nft -f of the same table: %v", time.Since(start))
	})
}

// TestNetlinkIntervals applies the same interval-set changes through the
// writer and through knftables (nft), and compares the tables after each:
// a prefix at address zero (no leading end element), one reaching the top
// of the address space (no end element), additions to a set that already
// has elements (each from a fresh writer), and deletions.
func TestNetlinkIntervals(t *testing.T) {
	requireKernel(t)
	steps := []func(n *nftables.NetlinkOps){
		func(n *nftables.NetlinkOps) {
			n.AddTable()
			n.AddSet("s", false, true, "ipv4_addr")
			n.AddSet("p", false, true, "inet_service")
			n.AddChain("c")
			n.AddSetsAccept("c", "s", "p")
			for _, e := range []string{"10.0.0.0/8", "0.0.0.0/8", "255.255.255.0/24", "192.168.1.0/24", "192.168.0.0/24"} {
				n.AddElement("s", e, "")
			}
			n.AddElement("p", "30000-32767", "")
		},
		func(n *nftables.NetlinkOps) {
			n.AddElement("s", "172.16.0.0/12", "")
			n.AddElement("s", "203.0.113.7/32", "")
			n.AddElement("p", "8080-8081", "")
		},
		func(n *nftables.NetlinkOps) {
			// Single values, to sets that hold intervals (a fresh writer).
			n.AddElement("s", "198.51.100.1", "")
			n.AddElement("p", "443", "")
		},
		func(n *nftables.NetlinkOps) {
			n.DeleteElement("s", "10.0.0.0/8")
			n.DeleteElement("s", "255.255.255.0/24")
			n.DeleteElement("p", "30000-32767")
		},
		func(n *nftables.NetlinkOps) {
			n.FlushSet("s")
			n.AddElement("s", "10.1.0.0/16", "")
		},
	}
	list := func() string {
		return run(t, "nft", "list", "ruleset") + normalizeBytecode(run(t, "nft", "--debug=netlink", "list", "ruleset"))
	}
	var viaNetlink, viaNFT []string
	ctx := context.Background()
	inThrowawayNetns(t, "nlint-a", func() {
		n := &nftables.NetlinkOps{}
		for _, step := range steps {
			n = n.Next() // a fresh writer, the same sets
			step(n)
			if err := nftables.RunNetlinkForTest(ctx, false, "lbkit", n); err != nil {
				t.Fatal(err)
			}
			viaNetlink = append(viaNetlink, list())
		}
	})
	inThrowawayNetns(t, "nlint-b", func() {
		nft, err := knftables.New(knftables.IPv4Family, "lbkit")
		if err != nil {
			t.Fatal(err)
		}
		n := &nftables.NetlinkOps{}
		for _, step := range steps {
			n = n.Next()
			step(n)
			tx := nft.NewTransaction()
			n.Fill(tx, false)
			if err := nft.Run(ctx, tx); err != nil {
				t.Fatal(err)
			}
			viaNFT = append(viaNFT, list())
		}
	})
	for i := range viaNFT {
		if diff := cmp.Diff(viaNFT[i], viaNetlink[i]); diff != "" {
			t.Errorf("after step %d (-nft +netlink):\n%s", i+1, diff)
		}
	}
}

// TestNetlinkErrors checks that kernel errors abort the whole batch, name
// the operation at fault, and keep ENOENT recognisable.
func TestNetlinkErrors(t *testing.T) {
	requireKernel(t)
	ctx := context.Background()
	inThrowawayNetns(t, "nlerr", func() {
		ok := &nftables.NetlinkOps{}
		ok.AddTable()
		ok.AddChain("c")
		ok.AddSet("m", true, false, "inet_proto", "inet_service")
		ok.AddElement("m", "tcp . 443", "goto c")
		if err := nftables.RunNetlinkForTest(ctx, false, "lbkit", ok); err != nil {
			t.Fatal(err)
		}
		before := run(t, "nft", "list", "table", "ip", "lbkit")

		// The two deletions go in one message; the kernel's offset names the
		// element at fault.
		bad := ok.Next()
		bad.AddDrop("c")
		bad.AddElement("m", "tcp . 80", "goto c")
		bad.DeleteElement("m", "tcp . 443")
		bad.DeleteElement("m", "udp . 53")
		err := nftables.RunNetlinkForTest(ctx, false, "lbkit", bad)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "delete element udp . 53 from map m") ||
			strings.Contains(err.Error(), "tcp . 443") {
			t.Fatalf("deleting a missing element: got %v, want ENOENT naming that element alone", err)
		}
		if after := run(t, "nft", "list", "table", "ip", "lbkit"); after != before {
			t.Errorf("a failed batch changed the table:\n%s", cmp.Diff(before, after))
		}

		missing := &nftables.NetlinkOps{}
		missing.AddAccept("nope")
		err = nftables.RunNetlinkForTest(ctx, false, "lbkit", missing)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no such file or directory") ||
			!strings.Contains(err.Error(), "chain nope") {
			t.Fatalf("rule in a missing chain: got %v", err)
		}

		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if err := nftables.RunNetlinkForTest(cancelled, false, "lbkit", ok); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled context: got %v", err)
		}
	})
}
