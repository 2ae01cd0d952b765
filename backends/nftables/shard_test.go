package nftables

import (
	"fmt"
	"testing"

	"github.com/lbkit/lbkit/servicemap"
)

// TestShardSpread: names that differ in a few characters (as generated
// names do) still spread evenly; plain FNV-1a put "nsN/svcN" on half the
// shards only.
func TestShardSpread(t *testing.T) {
	for _, tc := range []struct {
		n    int
		name func(i int) (ns, name string)
	}{
		{1600, func(i int) (string, string) { return "default", fmt.Sprintf("web-%d", i) }},
		{1600, func(i int) (string, string) { return fmt.Sprintf("ns%d", i%50), fmt.Sprintf("svc%d", i) }},
		{1600, func(i int) (string, string) { return fmt.Sprintf("team-%d", i), "api" }},
	} {
		count := make([]int, DefaultShards)
		for i := range tc.n {
			ns, name := tc.name(i)
			count[shardOf(servicemap.ServicePortName{Namespace: ns, Name: name}, DefaultShards)]++
		}
		even := tc.n / DefaultShards
		for s, c := range count {
			if c < even/2 || c > even*3/2 {
				t.Errorf("shard %d got %d of %d names (even share %d): %v", s, c, tc.n, even, count)
				break
			}
		}
	}
	// Every port of a service shares its shard.
	a := servicemap.ServicePortName{Namespace: "ns", Name: "svc", Port: "http"}
	b := servicemap.ServicePortName{Namespace: "ns", Name: "svc", Port: "dns", Protocol: "UDP"}
	if shardOf(a, 16) != shardOf(b, 16) {
		t.Errorf("two ports of one service in different shards")
	}
}

func TestIsOurTable(t *testing.T) {
	for name, want := range map[string]bool{
		"lbkit": true, "lbkit-00": true, "lbkit-15": true, "lbkit-123": true,
		"lbkit-ipvs": false, "lbkit-": false, "lbkit-1": false, "lbkitx": false, "other": false, "lbkit-0x": false,
	} {
		if got := isOurTable(name, "lbkit"); got != want {
			t.Errorf("isOurTable(%q) = %v, want %v", name, got, want)
		}
	}
	if tableName(Spec{Table: "t", Shards: 1}, 0) != "t" || tableName(Spec{Table: "t", Shards: 16}, 3) != "t-03" {
		t.Errorf("table names: %q %q", tableName(Spec{Table: "t", Shards: 1}, 0), tableName(Spec{Table: "t", Shards: 16}, 3))
	}
}
