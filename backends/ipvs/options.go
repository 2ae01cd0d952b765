//go:build linux

package ipvs

import (
	"log/slog"

	"sigs.k8s.io/knftables"
)

// Options say how a Backend programs its Spec: where it logs, and what
// stands for the kernel. The zero value is usable.
type Options struct {
	// Logger receives sync summaries (debug) and recovered problems (warn).
	// Nil discards.
	Logger *slog.Logger

	// IPVS, Host and NFT replace the kernel, for tests. Nil means the
	// real one, in the network namespace of the thread that calls New
	// (IPVS, Host) or Sync (NFT: knftables runs the nft binary). NFT
	// must be for the family of the snapshots synced.
	IPVS Handle
	Host Host
	NFT  knftables.Interface
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
