//go:build linux

package nftables_test

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends/nftables"
)

// Drifted, through a knftables interface: a flushed or deleted table is a
// drift until a full Sync repairs it; an incremental Sync does not.
func TestDriftedFake(t *testing.T) {
	ctx := context.Background()
	o := cluster(4, 2)
	tr := o.tracker(v1.IPv4Protocol)
	s1 := tr.Snapshot()
	b, fake := newFakeBackend(t, v1.IPv4Protocol, podCIDRs)
	drifted := func(what string, want bool) {
		t.Helper()
		got, err := b.Drifted(ctx)
		if err != nil || got != want {
			t.Errorf("%s: Drifted = %v, %v; want %v", what, got, err, want)
		}
	}
	drifted("before any sync", true)
	mustSync(t, b, nil, s1)
	drifted("after a full sync", false)

	for _, change := range []struct {
		name string
		do   func(tx *knftables.Transaction)
	}{
		{"table flushed", func(tx *knftables.Transaction) { tx.Flush(&knftables.Table{}) }},
		{"dispatch chain flushed", func(tx *knftables.Transaction) { tx.Flush(&knftables.Chain{Name: "services"}) }},
		{"table deleted", func(tx *knftables.Transaction) { tx.Delete(&knftables.Table{}) }},
	} {
		tx := fake.NewTransaction()
		change.do(tx)
		if err := fake.Run(ctx, tx); err != nil {
			t.Fatal(err)
		}
		drifted(change.name, true)
		mustSync(t, b, nil, s1)
		drifted(change.name+", then a full sync", false)
		checkMatchesRender(t, fake, nftables.Render(s1, podCIDRs))
	}
}
