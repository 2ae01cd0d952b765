package nftables

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/lbkit/lbkit/servicemap"
)

// Service ports are spread over Spec.Shards tables by a hash of their
// service's namespace and name, so that the ports of one service share a
// table (and its hairpin and health-check elements). Every table is a whole
// ruleset for its share: base chains on the same hooks, its own dispatch
// maps. A packet meets every table's base chains; the first nat chain that
// DNATs a connection ends the nat hook for it, and a table that does not
// know the destination lets the packet pass.
//
// Why: a transaction that adds a jump or dnat rule (or a verdict-map
// element) makes the kernel re-validate every chain reachable from the base
// chains of that table, not of the others. The cost of a one-endpoint
// change then follows the size of one shard, not of the cluster.

// tableName returns the name of shard i's table.
func tableName(spec Spec, i int) string {
	if spec.Shards <= 1 {
		return spec.Table
	}
	return fmt.Sprintf("%s-%02d", spec.Table, i)
}

// shardOf returns the shard of a service port.
func shardOf(n servicemap.ServicePortName, shards int) int {
	if shards <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(n.Namespace))
	h.Write([]byte{'/'})
	h.Write([]byte(n.Name))
	// FNV's low bits follow the XOR of the input's low bits: "ns1/svc1" and
	// "ns2/svc2" always land on the same parity. A finalizer (murmur3's)
	// spreads every input bit over the bits the modulo keeps.
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return int(x % uint64(shards))
}

// partition splits ports (sorted by name) by shard; each part stays sorted.
func partition(ports []*portRules, shards int) [][]*portRules {
	parts := make([][]*portRules, shards)
	for _, p := range ports {
		i := shardOf(p.name, shards)
		parts[i] = append(parts[i], p)
	}
	return parts
}

// partitionPorts is partition for a snapshot's ports.
func partitionPorts(ports []*servicemap.ServicePort, shards int) [][]*servicemap.ServicePort {
	parts := make([][]*servicemap.ServicePort, shards)
	for _, p := range ports {
		i := shardOf(p.Name, shards)
		parts[i] = append(parts[i], p)
	}
	return parts
}

// isOurTable reports whether name is one of the tables a Backend with table
// base name base may have created, with any shard count: base itself or
// base-NN.
func isOurTable(name, base string) bool {
	if name == base {
		return true
	}
	rest, ok := strings.CutPrefix(name, base+"-")
	if !ok || len(rest) < 2 {
		return false
	}
	_, err := strconv.ParseUint(rest, 10, 16)
	return err == nil
}
