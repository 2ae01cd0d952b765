//go:build linux

package conntrack

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
)

// dumpAttempts bounds how often Reconcile walks the table again when the
// kernel reports that the table changed during a dump (a busy table).
const dumpAttempts = 3

// Cleaner deletes stale UDP conntrack flows. It is safe for concurrent use
// when its netlink handle is (the default is).
type Cleaner struct {
	opts   Options
	handle *netlink.Handle
	log    *slog.Logger
}

// New returns a Cleaner. It does not touch the kernel: a missing conntrack
// netlink interface shows in the first Reconcile.
func New(opts Options) (*Cleaner, error) {
	for _, p := range opts.NodePortAddresses {
		if !p.IsValid() {
			return nil, fmt.Errorf("conntrack: invalid NodePortAddresses prefix %v", p)
		}
	}
	h := opts.Handle
	if h == nil {
		// A zero Handle is what netlink's package functions use: a new
		// socket per request, in the calling thread's namespace.
		h = &netlink.Handle{}
	}
	return &Cleaner{opts: opts, handle: h, log: opts.logger()}, nil
}

// Reconcile deletes the UDP flows that snap makes stale (see the package
// documentation) and returns how many it deleted. It reads the table once
// (again, up to twice more, if the kernel reports that the dump was
// interrupted). A snapshot without UDP ports deletes nothing and reads
// nothing.
//
// Call it after every Sync that succeeded, with the snapshot synced to: a
// flow is only stale once the rules no longer lead to its endpoint.
func (c *Cleaner) Reconcile(snap *servicemap.Snapshot) (deleted int, err error) {
	return c.ReconcileChanges(snap, nil)
}

// ReconcileChanges is Reconcile for a sync that applied changes (the Diff
// from the previous snapshot to snap; nil: none known). On top of what
// Reconcile deletes, it deletes the flows that went through a frontend the
// changes removed (changes.StaleServices and StaleEndpoints): a UDP flow to
// a deleted service's cluster IP would otherwise keep reaching the pod it
// was DNATed to, since no rule of snap mentions that address any more.
// It still reads the table once.
func (c *Cleaner) ReconcileChanges(snap *servicemap.Snapshot, changes *servicemap.Changes) (deleted int, err error) {
	start := time.Now()
	x := newIndex(snap, c.opts.NodePortAddresses, c.opts.ReapTCP)
	if changes != nil {
		x.addGone(changes)
	}
	if x.empty() {
		return 0, nil
	}
	family := netlink.InetFamily(syscall.AF_INET)
	if snap.IPFamily() == v1.IPv6Protocol {
		family = syscall.AF_INET6
	}
	f := &staleFilter{index: x, log: c.log}
	for attempt := 1; ; attempt++ {
		n, derr := c.handle.ConntrackDeleteFilters(netlink.ConntrackTable, family, f)
		deleted += int(n)
		if derr == nil || !errors.Is(derr, netlink.ErrDumpInterrupted) || attempt == dumpAttempts {
			err = derr
			break
		}
	}
	c.log.Debug("conntrack reconciled", "version", snap.Version(), "family", snap.IPFamily(),
		"deleted", deleted, "took", time.Since(start), "error", err)
	if deleted > 0 && c.opts.OnDeleted != nil {
		c.opts.OnDeleted(deleted)
	}
	if err != nil {
		return deleted, fmt.Errorf("conntrack: delete stale UDP flows: %w", backends.WithCause(err))
	}
	return deleted, nil
}

// staleFilter matches the flows its index calls stale.
type staleFilter struct {
	index *index
	log   *slog.Logger
}

var _ netlink.CustomConntrackFilter = (*staleFilter)(nil)

// MatchConntrackFlow reports whether flow is stale.
func (f *staleFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	origDst := addrPort(flow.Forward.DstIP, flow.Forward.DstPort)
	replySrc := addrPort(flow.Reverse.SrcIP, flow.Reverse.SrcPort)
	v := f.index.check(flow.Forward.Protocol, origDst, replySrc)
	if v == keep {
		return false
	}
	f.log.Debug("conntrack deleting flow", "reason", v.String(),
		"src", addrPort(flow.Forward.SrcIP, flow.Forward.SrcPort), "dst", origDst, "replySrc", replySrc)
	return true
}

// addrPort converts a netlink address; an IPv4 address in either of its
// forms becomes a 4-byte netip.Addr.
func addrPort(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}

func (c *Cleaner) logger() *slog.Logger { return c.log }
