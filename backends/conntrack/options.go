package conntrack

import (
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Options configure a Cleaner. The zero value is usable.
type Options struct {
	// Logger receives a debug record per Reconcile and per deleted flow;
	// nil discards them.
	Logger *slog.Logger
	// Handle is the netlink handle to use, which fixes the network
	// namespace (see netlink.NewHandleAt). Nil means a new socket for each
	// request, in the namespace of the calling thread.
	Handle *netlink.Handle
	// NodePortAddresses are the addresses node ports are served on, as the
	// backend's option of the same name. None of the snapshot's family
	// means any address, as kube-proxy assumes: a UDP flow to any address
	// but a cluster IP, with a node port as its destination port, is then
	// taken for a node port flow.
	NodePortAddresses []netip.Prefix
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}
