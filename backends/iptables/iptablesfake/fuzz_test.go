package iptablesfake_test

import (
	"context"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/backends/iptables/iptablesfake"
)

// FuzzRestore: no restore input makes the fake panic; with the nft
// flavour, input it refuses changes nothing (the legacy flavour keeps the
// tables committed before the failing line, as iptables-legacy-restore
// does); and whatever state results, what it saves is input a fresh fake
// accepts and saves the same (the fake's parser and its printer agree).
// Both flavours, with and without --noflush.
func FuzzRestore(f *testing.F) {
	for _, s := range []string{
		"*nat\n:LBKIT-SVC - [0:0]\n-A PREROUTING -j LBKIT-SVC\n" +
			"-A LBKIT-SVC -d 10.96.0.1/32 -p tcp --dport 80 -j DNAT --to-destination 10.244.0.5:8080\nCOMMIT\n",
		"*filter\n:INPUT DROP [3:120]\n-A INPUT -m comment --comment \"a \\\"b\\\"\" -j ACCEPT\nCOMMIT\n",
		"*filter\n:X - [0:0]\n-A X -j RETURN\n-F X\n-X X\nCOMMIT\n",
		"*mangle\n-I PREROUTING 1 -j MARK --set-xmark 0x4000/0x4000\nCOMMIT\n*raw\nCOMMIT\n",
		"# comment\n*filter\n:A - [0:0]\n:B - [0:0]\n-A A -j B\n-D A -j B\nCOMMIT\n",
		"*filter\n-A NOPE -j ACCEPT\nCOMMIT\n",
		"*nat\n:X - [0:0]\n",
	} {
		f.Add(s, false, false)
	}
	ctx := context.Background()
	restore := func(fk *iptablesfake.Fake, input string, noflush bool) error {
		var args []string
		if noflush {
			args = []string{"--noflush"}
		}
		_, err := fk.Run(ctx, "iptables-restore", args, strings.NewReader(input))
		return err
	}
	f.Fuzz(func(t *testing.T, input string, noflush, nft bool) {
		flavour := iptables.FlavourLegacy
		if nft {
			flavour = iptables.FlavourNFT
		}
		fk := iptablesfake.New(flavour)
		// Something to lose: a refused input must leave it.
		const base = "*filter\n:KEEP - [0:0]\n-A INPUT -j KEEP\n-A KEEP -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n"
		if err := restore(fk, base, false); err != nil {
			t.Fatal(err)
		}
		before := fk.Save(false)
		err := restore(fk, input, noflush)
		saved := fk.Save(false)
		if err != nil && nft && saved != before {
			t.Fatalf("refused input (%v) changed the tables:\n%s\nwas\n%s", err, saved, before)
		}
		fresh := iptablesfake.New(flavour)
		if err := restore(fresh, saved, false); err != nil {
			t.Fatalf("the fake's own save output is refused: %v\n%s", err, saved)
		}
		if again := fresh.Save(false); again != saved {
			t.Fatalf("save, restore, save differs:\n%s\nthen\n%s", saved, again)
		}
	})
}
