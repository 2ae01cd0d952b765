//go:build linux

package nftables

import (
	"log/slog"

	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends/internal/check"
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

// Options say how a Backend reaches the kernel; what it programs is its
// Spec. The zero value is usable: netlink, DefaultBatchSize, the kernel's
// nftables, no logging.
type Options struct {
	// Transport is how changes reach the kernel (TransportNetlink when
	// empty). Listing always uses netlink.
	Transport Transport
	// BatchSize is the number of service ports per transaction in a full
	// sync (DefaultBatchSize when zero or negative).
	BatchSize int
	// NFT is the nftables interface; nil means the kernel's. Tests pass
	// knftables.NewFake, for the family of the snapshots they sync and the
	// table Spec.Table. An interface holds one table: with NFT set,
	// Spec.Shards must be 0 or 1 and Transport empty (New refuses other
	// values).
	NFT knftables.Interface
	// Logger receives sync summaries (debug) and recovered problems (warn).
	// Nil discards.
	Logger *slog.Logger
}

// validate refuses combinations that cannot mean what they say.
func (o Options) validate(s Spec) error {
	bad := func(format string, args ...any) error { return check.Invalid("nftables", format, args...) }
	switch {
	case o.NFT != nil && s.Shards > 1:
		return bad("Options.NFT holds one table, but Spec.Shards is %d: leave Shards 0 or 1", s.Shards)
	case o.NFT != nil && o.Transport != "":
		return bad("Options.NFT is the transport; Transport %q cannot be used with it", o.Transport)
	case o.Transport != "" && o.Transport != TransportNetlink && o.Transport != TransportNFT:
		return bad("unknown transport %q", o.Transport)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Transport == "" {
		o.Transport = TransportNetlink
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// nftFamily is the family's knftables name.
func nftFamily(f family) knftables.Family { return knftables.Family(f.IP) }
