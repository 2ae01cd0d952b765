package nftables

import (
	"cmp"
	"net/netip"

	"github.com/lbkit/lbkit/backends/internal/check"
	"github.com/lbkit/lbkit/backends/internal/nftfam"
)

// Defaults for the zero values of Spec and Options.
const (
	DefaultTable          = "lbkit"
	DefaultMasqueradeMark = 0x4000
	// DefaultBatchSize is the number of service ports a full sync applies per
	// transaction, within one table: large enough that a shard usually goes
	// in one transaction (README, "Performance", has the measurements).
	DefaultBatchSize = 1000
	// DefaultShards is the number of tables service ports are spread over.
	// The kernel re-validates every chain of a table that a transaction
	// touches with a jump or a dnat rule, so a smaller table commits
	// faster; every table's base chains also see every packet, so tables
	// are not free either (README, "Scale"). Only tables that hold a
	// service port exist.
	DefaultShards = 16
)

// Spec describes what lbkit programs: the tables, and the options that
// change their rules. Render takes a Spec alone; New takes it with the
// Options that say how to reach the kernel. The zero value is usable: table
// "lbkit" in DefaultShards shards, mark 0x4000, no pod CIDR (no cluster-IP
// masquerade and no short-circuit of pod traffic), node ports on every
// local non-loopback address.
type Spec struct {
	// Table names the nftables tables lbkit owns ("lbkit" when empty):
	// with one shard the table is called Table, with more Table-00,
	// Table-01, and so on. Their family follows the snapshot: ip for IPv4,
	// ip6 for IPv6.
	Table string
	// Shards is the number of tables the services are spread over, by a
	// hash of namespace and name (DefaultShards when zero). Every table is
	// a complete ruleset for its services; a table exists only while it
	// holds at least one service port. More shards make an incremental
	// sync cheaper in the kernel; one shard is easiest to read.
	Shards int
	// ClusterCIDRs are the pod CIDRs (one per family is usual; prefixes of
	// the other family are ignored). Traffic to a cluster IP from outside
	// them is masqueraded, and pod traffic to an external or load-balancer
	// IP of an externalTrafficPolicy=Local service short-circuits to the
	// cluster endpoints. Empty: no source counts as a pod, as kube-proxy
	// without a local-traffic detector.
	ClusterCIDRs []netip.Prefix
	// MasqueradeAll masquerades all traffic to cluster IPs, pods' included
	// (kube-proxy's masqueradeAll); without it only traffic from outside
	// ClusterCIDRs is.
	MasqueradeAll bool
	// NodePortAddresses restrict node ports to local addresses inside these
	// prefixes. Empty: every local address. Loopback never accepts node
	// ports (CVE-2020-8558), whatever this says.
	NodePortAddresses []netip.Prefix
	// NodeIPs are the node's own addresses. When a loadBalancerSourceRange
	// contains one of them, the load-balancer IPs are allowed as sources
	// too: a VIP bound on the node loops traffic from the node back with the
	// VIP as its source. Optional.
	NodeIPs []netip.Addr
	// MasqueradeMark is the packet-mark bit that asks for masquerading
	// (0x4000 when zero).
	MasqueradeMark uint32
}

// maxShards bounds Spec.Shards: table names carry two digits.
const maxShards = 100

// maxTableName is the longest Spec.Table: the kernel takes names of up to
// 255 bytes, and shards add "-00".
const maxTableName = 252

// Validate reports the first value of s that cannot mean what it says; the
// error wraps backends.ErrInvalidConfig. New calls it; Render, a pure
// function, uses s as it is.
func (s Spec) Validate() error {
	switch {
	case s.Shards < 0 || s.Shards > maxShards:
		return check.Invalid("nftables", "Spec.Shards is %d, want 0 (the default) to %d", s.Shards, maxShards)
	case len(s.Table) > maxTableName:
		return check.Invalid("nftables", "Spec.Table %q is longer than %d bytes", s.Table, maxTableName)
	}
	return cmp.Or(check.Mark("nftables", s.withDefaults().MasqueradeMark),
		check.Addresses("nftables", s.NodeIPs, s.ClusterCIDRs, s.NodePortAddresses))
}

func (s Spec) withDefaults() Spec {
	if s.Table == "" {
		s.Table = DefaultTable
	}
	if s.MasqueradeMark == 0 {
		s.MasqueradeMark = DefaultMasqueradeMark
	}
	if s.Shards <= 0 {
		s.Shards = DefaultShards
	}
	return s
}

// family is the IP family of a table.
type family = nftfam.Family

var (
	ipv4     = nftfam.IPv4
	ipv6     = nftfam.IPv6
	familyOf = nftfam.Of
)

// prefixesOf returns the valid prefixes of the family, masked, sorted, and
// without any that another one contains.
func prefixesOf(fam family, in []netip.Prefix) []netip.Prefix { return fam.Prefixes(in) }
