//go:build linux

package nftables

import (
	"fmt"
	"log/slog"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends"
)

// Defaults for the zero values of Options.
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

// Transport says how a Backend writes to the kernel.
type Transport string

const (
	// TransportNetlink writes transactions over netlink
	// (github.com/google/nftables): no process per transaction, and no
	// fetch of every chain before each write as nft does. The default.
	TransportNetlink Transport = "netlink"
	// TransportNFT writes transactions as text through the nft binary
	// (sigs.k8s.io/knftables), as kube-proxy does.
	TransportNFT Transport = "nft"
)

// Options configure a Backend and Render. The zero value is usable: table
// "lbkit", mark 0x4000, no pod CIDR (no cluster-IP masquerade and no
// short-circuit of pod traffic), node ports on every local non-loopback
// address.
type Options struct {
	// Table names the nftables tables lbkit owns ("lbkit" when empty):
	// with one shard the table is called Table, with more Table-00,
	// Table-01, and so on. Their family follows the snapshot: ip for IPv4,
	// ip6 for IPv6.
	Table string
	// Shards is the number of tables the services are spread over, by a
	// hash of namespace and name (DefaultShards when zero or negative).
	// Every table is a complete ruleset for its services; a table exists
	// only while it holds at least one service port. More shards make an
	// incremental sync cheaper in the kernel; one shard is easiest to read.
	Shards int
	// Transport is how changes reach the kernel (TransportNetlink when
	// empty). Listing always uses netlink.
	Transport Transport
	// ClusterCIDRs are the pod CIDRs (one per family is usual; prefixes of
	// the other family are ignored). Traffic to a cluster IP from outside
	// them is masqueraded, and pod traffic to an external or load-balancer
	// IP of an externalTrafficPolicy=Local service short-circuits to the
	// cluster endpoints. Empty: no source counts as a pod, as kube-proxy
	// without a local-traffic detector.
	ClusterCIDRs []netip.Prefix
	// NodePortAddresses restrict node ports to local addresses inside these
	// prefixes. Empty: every local address. Loopback never accepts node
	// ports (CVE-2020-8558), whatever this says.
	NodePortAddresses []netip.Prefix
	// NodeIPs are the node's own addresses. When a loadBalancerSourceRange
	// contains one of them, the load-balancer IPs are allowed as sources
	// too: a VIP bound on the node loops traffic from the node back with the
	// VIP as its source. Optional.
	NodeIPs []netip.Addr
	// MasqueradeMark is the packet-mark bit(s) that ask for masquerading
	// (0x4000 when zero).
	MasqueradeMark uint32
	// BatchSize is the number of service ports per transaction in a full
	// sync (DefaultBatchSize when zero or negative).
	BatchSize int
	// NFT is the nftables interface; nil means the kernel's. Tests pass
	// knftables.NewFake, for the family of the snapshots they sync and the
	// table Table. An interface holds one table: with NFT set, Shards must
	// be 0 or 1 and Transport empty (New refuses other values).
	NFT knftables.Interface
	// Logger receives sync summaries (debug) and recovered problems (warn).
	// Nil discards.
	Logger *slog.Logger
}

// validate refuses combinations that cannot mean what they say.
func (o Options) validate() error {
	if o.NFT != nil && o.Shards > 1 {
		return fmt.Errorf("nftables: Options.NFT holds one table, but Shards is %d: leave Shards 0 or 1", o.Shards)
	}
	if o.NFT != nil && o.Transport != "" {
		return fmt.Errorf("nftables: Options.NFT is the transport; Transport %q cannot be used with it", o.Transport)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.MasqueradeMark == 0 {
		o.MasqueradeMark = DefaultMasqueradeMark
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Shards <= 0 {
		o.Shards = DefaultShards
	}
	if o.NFT != nil {
		o.Shards = 1
	}
	if o.Transport == "" {
		o.Transport = TransportNetlink
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// family holds the spellings that differ between the ip and ip6 tables.
type family struct {
	nft      knftables.Family
	ip       string       // "ip" or "ip6", as in "ip saddr"
	addrType string       // set type of one address
	loopback netip.Prefix // what "never loopback" excludes
	is6      bool
}

var (
	ipv4 = family{nft: knftables.IPv4Family, ip: "ip", addrType: "ipv4_addr", loopback: netip.MustParsePrefix("127.0.0.0/8")}
	ipv6 = family{nft: knftables.IPv6Family, ip: "ip6", addrType: "ipv6_addr", loopback: netip.MustParsePrefix("::1/128"), is6: true}
)

func familyOf(f v1.IPFamily) family {
	if f == v1.IPv6Protocol {
		return ipv6
	}
	return ipv4
}

// prefixesOf returns the valid prefixes of the family, masked, sorted, and
// without any that another one contains (see backends.Disjoint).
func prefixesOf(fam family, in []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range in {
		if p.IsValid() && p.Addr().Is6() == fam.is6 && !p.Addr().Is4In6() {
			out = append(out, p)
		}
	}
	return backends.Disjoint(out)
}
