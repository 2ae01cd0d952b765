package iptablesfake_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/backends/iptables/iptablesfake"
)

func restore(f *iptablesfake.Fake, program, input string, args ...string) error {
	_, err := f.Run(context.Background(), program, args, strings.NewReader(input))
	return err
}

const base = `*nat
:PREROUTING ACCEPT [0:0]
:SVC - [0:0]
:SEP - [0:0]
-A PREROUTING -m comment --comment "to svc" -j SVC
-A SVC -j SEP
-A SEP -p tcp -j DNAT --to-destination 10.0.0.1:80
COMMIT
*filter
:FORWARD DROP [0:0]
:OTHER - [0:0]
-A OTHER -j ACCEPT
COMMIT
`

// --noflush empties only the chains the input declares; without it a
// restored table is replaced whole.
func TestNoflush(t *testing.T) {
	f := iptablesfake.New(iptables.FlavourLegacy)
	if err := restore(f, "iptables-restore", base, "--noflush"); err != nil {
		t.Fatal(err)
	}
	if err := restore(f, "iptables-restore", "*nat\n:SEP - [0:0]\n-A SEP -j DNAT --to-destination 10.0.0.2:80\nCOMMIT\n", "--noflush"); err != nil {
		t.Fatal(err)
	}
	want := `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:OTHER - [0:0]
-A OTHER -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:SEP - [0:0]
:SVC - [0:0]
-A PREROUTING -m comment --comment "to svc" -j SVC
-A SEP -j DNAT --to-destination 10.0.0.2:80
-A SVC -j SEP
COMMIT
`
	if diff := cmp.Diff(want, f.Save(false)); diff != "" {
		t.Errorf("after --noflush (-want +got):\n%s", diff)
	}
	if err := restore(f, "iptables-restore", "*filter\n:X - [0:0]\nCOMMIT\n"); err != nil {
		t.Fatal(err)
	}
	if got := f.Save(false); strings.Contains(got, "OTHER") || !strings.Contains(got, ":X - [0:0]") || !strings.Contains(got, ":FORWARD DROP") {
		t.Errorf("without --noflush, filter should hold X only (policies kept):\n%s", got)
	}
}

// Malformed input is refused with the line, and nothing of its
// transaction is applied: per table with the legacy flavour, the whole
// input with the nft flavour.
func TestRefusedInput(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		line        int
	}{
		{"rule in a missing chain", "*nat\n-A NOPE -j ACCEPT\nCOMMIT\n", 2},
		{"jump to a missing chain", "*nat\n:A - [0:0]\n-A A -j MISSING\nCOMMIT\n", 3},
		{"delete a chain in use", "*nat\n-X SEP\nCOMMIT\n", 2},
		{"delete a chain with rules", "*nat\n:Z - [0:0]\n-A Z -j ACCEPT\n-X Z\nCOMMIT\n", 4},
		{"no COMMIT", "*nat\n:A - [0:0]\n", 3},
		{"rule before a table", "-A SVC -j ACCEPT\n", 1},
		{"unknown table", "*bogus\nCOMMIT\n", 1},
		{"policy on a user chain", "*nat\n:A ACCEPT [0:0]\nCOMMIT\n", 2},
		{"bad counters", "*nat\n:PREROUTING ACCEPT [x]\nCOMMIT\n", 2},
		{"counters without '['", "*nat\n:PREROUTING ACCEPT 0:0]\nCOMMIT\n", 2},
		{"unterminated quote", "*nat\n-A SVC -m comment --comment \"oops\nCOMMIT\n", 2},
		{"missing option value", "*nat\n-A SVC -j\nCOMMIT\n", 2},
		{"long chain name", "*nat\n:ABCDEFGHIJKLMNOPQRSTUVWXYZ0123 - [0:0]\nCOMMIT\n", 2},
		{"unknown command", "*nat\n-Q SVC\nCOMMIT\n", 2},
	} {
		for _, fl := range []iptables.Flavour{iptables.FlavourLegacy, iptables.FlavourNFT} {
			f := iptablesfake.New(fl)
			if err := restore(f, "iptables-restore", base); err != nil {
				t.Fatal(err)
			}
			before := f.Save(false)
			// A filter table change first: the legacy flavour commits it
			// before reaching the bad nat table, the nft flavour does not.
			err := restore(f, "iptables-restore", "*filter\n:NEW - [0:0]\nCOMMIT\n"+tc.input, "--noflush")
			var le *iptablesfake.LineError
			if !errors.As(err, &le) || le.Line != tc.line+3 {
				t.Errorf("%s/%s: error %v, want a LineError at line %d", tc.name, fl, err, tc.line+3)
				continue
			}
			got := f.Save(false)
			if fl == iptables.FlavourNFT && got != before {
				t.Errorf("%s/%s: a refused input changed the tables:\n%s", tc.name, fl, got)
			}
			if fl == iptables.FlavourLegacy && (!strings.Contains(got, ":NEW - [0:0]") || strings.Count(got, "\n") != strings.Count(before, "\n")+1) {
				t.Errorf("%s/%s: want the committed filter table and nothing else changed:\n%s", tc.name, fl, got)
			}
		}
	}
}

// The other programs the backend runs answer from the tables.
func TestListings(t *testing.T) {
	f := iptablesfake.New(iptables.FlavourNFT)
	ctx := context.Background()
	if err := restore(f, "ip6tables-nft-restore", base, "-w", "5", "--noflush"); err != nil {
		t.Fatal(err)
	}
	out, err := f.Run(ctx, "ip6tables-nft", []string{"-w", "5", "-t", "nat", "-S", "SVC"}, nil)
	if diff := cmp.Diff("-N SVC\n-A SVC -j SEP\n", string(out)); err != nil || diff != "" {
		t.Errorf("-S SVC: %v (-want +got):\n%s", err, diff)
	}
	if _, err := f.Run(ctx, "ip6tables", []string{"-t", "nat", "-S", "NOPE"}, nil); err == nil {
		t.Errorf("-S of a missing chain succeeded")
	}
	out, err = f.Run(ctx, "nft", []string{"list", "chains", "ip6"}, nil)
	if err != nil || !strings.Contains(string(out), "table ip6 nat {\n\tchain PREROUTING {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t}") ||
		!strings.Contains(string(out), "\tchain SEP {\n\t}\n") {
		t.Errorf("nft list chains ip6: %v\n%s", err, out)
	}
	if got := f.Save(false); got != "" {
		t.Errorf("IPv4 tables changed by an ip6tables restore:\n%s", got)
	}
	out, err = f.Run(ctx, "iptables", []string{"--version"}, nil)
	if err != nil || !strings.Contains(string(out), "(nf_tables)") {
		t.Errorf("--version: %q, %v", out, err)
	}
	if _, err := f.Run(ctx, "ebtables", nil, nil); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("an unknown program: %v, want exec.ErrNotFound", err)
	}
	// -D removes the rule with the same words, however it was quoted.
	if _, err := f.Run(ctx, "ip6tables", []string{"-t", "nat", "-D", "PREROUTING", "-m", "comment", "--comment", "to svc", "-j", "SVC"}, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(f.Save(true), "-A PREROUTING") {
		t.Errorf("-D left the rule:\n%s", f.Save(true))
	}
}
