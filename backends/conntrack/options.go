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
	// ReapTCP also deletes TCP entries DNATed to an endpoint that is gone
	// from its service port (no longer in any EndpointSlice, not merely
	// not ready or terminating), and those through a frontend a sync
	// removed. Off by default, as in kube-proxy: an established
	// connection then keeps going to the old endpoint's address until it
	// ends, which may hang it if the pod is gone (kubernetes#101607,
	// #104098); with ReapTCP its next packet finds no entry, is routed by
	// the rules again and is reset by the endpoint it now reaches, so the
	// client learns at once.
	ReapTCP bool
	// OnDeleted, when set, is called after every reconcile that deleted
	// entries, with how many (for metrics, e.g. prommetrics'
	// Collector.ConntrackDeleted). It must not block.
	OnDeleted func(n int)
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}
