//go:build linux

package nftables

import "github.com/lbkit/lbkit/servicemap"

// KernelIOForTest returns how many listing (dump) requests the Backend has
// made of the kernel, and how many messages its netlink transactions held.
func (b *Backend) KernelIOForTest() (dumps, messages int) {
	return b.io.dumps, b.io.messages
}

// ColdSyncOrderForTest returns the service ports of snap in the order a
// full sync into an empty kernel programs them.
func ColdSyncOrderForTest(snap *servicemap.Snapshot, spec Spec) []servicemap.ServicePortName {
	spec = spec.withDefaults()
	var out []servicemap.ServicePortName
	for _, part := range partitionPorts(sortedPorts(snap), spec.Shards) {
		for _, p := range part {
			out = append(out, p.Name)
		}
	}
	return out
}
