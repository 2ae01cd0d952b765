package backendtest

import (
	"os"
	"path/filepath"
	"strings"
)

// foreignRuleset is what another user of nftables (a firewall, a CNI, an
// nft newer than ours) keeps in a node, written before every scenario's
// backend exists (kubernetes#136786: kube-proxy stopped syncing when
// another nft had left sets it could not list). It uses what lbkit never
// writes: families other than ip and ip6 (inet, netdev, bridge, arp), sets
// of type ifname with comments and per-element user data, interval sets,
// rule comments and counters, bridge rules on ethernet headers, and tables named as lbkit's own in other
// families, which a cleanup by name must not take. Nothing in it matches
// the Network's traffic.
const foreignRuleset = `
table inet other {
	set ifnames {
		type ifname
		comment "written by another nft"
		elements = { "eth9" comment "user data", "lo" }
	}
	set nets {
		type ipv4_addr
		flags interval
		comment "documentation range"
		elements = { 192.0.2.0/24 comment "TEST-NET-1" }
	}
	chain forwarding {
		type filter hook forward priority filter + 10; policy accept;
		ip daddr 192.0.2.1 counter drop comment "matches nothing here"
		iifname @ifnames ip saddr @nets drop
	}
}
table netdev other {
	chain incoming {
		type filter hook ingress device "lo" priority filter; policy accept;
		ip daddr 192.0.2.1 drop
	}
}
table bridge other {
	chain forwarding {
		type filter hook forward priority filter; policy accept;
		ether type arp ether saddr 02:00:00:00:12:34 drop
	}
}
table arp other {
	chain incoming {
		type filter hook input priority filter; policy accept;
	}
}
table inet lbkit {
	chain c {
	}
}
table netdev lbkit-00 {
	set s {
		type ifname
		comment "not lbkit's"
	}
}
`

// foreignFlowtable is a flowtable on the node's bridge, added to table inet
// other where the kernel has flowtables (CONFIG_NF_FLOW_TABLE); some
// kernels do not, and then it is left out (logged).
const foreignFlowtable = `add flowtable inet other ft { hook ingress priority filter; devices = { br0 }; }`

// foreignTables are the tables of foreignRuleset and of the ip and ip6
// tables newEnv adds, as "family name".
var foreignTables = []string{
	"ip " + foreignTable, "ip6 " + foreignTable,
	"inet other", "netdev other", "bridge other", "arp other", "inet lbkit", "netdev lbkit-00",
}

// addForeignTables writes foreignRuleset into the node, records each
// foreign table's listing, and registers a check, run after the backends'
// teardown Cleanup, that every one is still there byte for byte: a
// backend's syncs, listings and cleanups go around them.
func (e *env) addForeignTables() {
	e.t.Helper()
	e.nftScript(foreignRuleset)
	if out, err := e.n.NodeExec("nft", foreignFlowtable); err != nil {
		e.t.Logf("backendtest: no foreign flowtable, the kernel has none: %v", strings.TrimSpace(out))
	}
	before := e.listForeign()
	e.t.Cleanup(func() {
		after := e.listForeign()
		for i, tbl := range foreignTables {
			if after[i] != before[i] {
				e.t.Errorf("backendtest: foreign table %s changed by the backend; before:\n%s\nafter:\n%s", tbl, before[i], after[i])
			}
		}
	})
}

// listForeign lists every foreign table, an error standing for a missing one.
func (e *env) listForeign() []string {
	out := make([]string, len(foreignTables))
	for i, tbl := range foreignTables {
		l, err := e.n.NodeExec("nft", append([]string{"list", "table"}, strings.Fields(tbl)...)...)
		if err != nil {
			l = "error: " + err.Error()
		}
		out[i] = l
	}
	return out
}

// nftScript loads an nft script into the node, failing the scenario if
// nft refuses it.
func (e *env) nftScript(script string) {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), "foreign.nft")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		e.t.Fatalf("backendtest: %v", err)
	}
	e.exec("nft", "-f", path)
}
