//go:build linux

package userspace

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/picker"
	"github.com/lbkit/lbkit/servicemap"
)

// Backend is an L4 proxy: it serves the virtual addresses and node ports of
// a snapshot with sockets in this process and forwards each connection (TCP)
// or flow (UDP) to an endpoint a picker.Picker chooses. A Backend is synced
// by one goroutine at a time; its servers run on goroutines of their own.
type Backend struct {
	spec   Spec
	opts   Options
	ns     *netNS
	picker *picker.Picker
	// local are the node's addresses and the link's: a client with one of
	// them is this node (short-circuited like the kernel backends do).
	local atomic.Pointer[map[netip.Addr]bool]

	mu      sync.Mutex
	servers map[frontendKey]server
	closed  bool
}

// server is one served socket.
type server interface {
	kind() backends.Frontend
	// prune ends the UDP flows to endpoints the port no longer uses.
	prune()
	close()
}

// New returns a Backend that serves spec, in the network namespace of the
// calling thread (so a test can make it inside a namespace of its own). An
// invalid spec or options give an error wrapping backends.ErrInvalidConfig.
func New(spec Spec, opts Options) (*Backend, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	ns, err := currentNetNS()
	if err != nil {
		return nil, fmt.Errorf("userspace: %w: %w", backends.ErrNotSupported, err)
	}
	s := spec.withDefaults()
	b := &Backend{
		spec:    s,
		opts:    opts.withDefaults(),
		ns:      ns,
		picker:  picker.New(nil, picker.Options{Policy: s.Policy, PolicyFor: s.PolicyFor, PodCIDRs: s.ClusterCIDRs}),
		servers: map[frontendKey]server{},
	}
	empty := map[netip.Addr]bool{}
	b.local.Store(&empty)
	return b, nil
}

// Name is "userspace".
func (b *Backend) Name() string { return "userspace" }

// Sync serves next: the netfilter table first (so nothing is accepted that
// must be dropped), then the link's addresses, the picker, and the
// sockets. Sockets of frontends that stay are kept, with their
// connections; UDP flows to endpoints that no longer serve the port end at
// once, so their next datagram is forwarded to a new endpoint. prev is not
// needed: the proxy's own state is always at hand, and the kernel's (link,
// table) is reconciled in full.
func (b *Backend) Sync(ctx context.Context, prev, next *servicemap.Snapshot) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("userspace: Sync after Close")
	}
	nodeIPs := b.spec.NodeIPs
	if len(nodeIPs) == 0 {
		var err error
		if nodeIPs, err = b.ns.nodeAddrs(b.spec.Link); err != nil {
			return fmt.Errorf("userspace: list node addresses: %w", err)
		}
	}
	d := plan(next, &b.spec, nodeIPs)
	if err := b.ns.syncTable(ctx, b.spec.Table, d); err != nil {
		return fmt.Errorf("userspace: %w: nftables table: %w", backends.ErrApply, err)
	}
	if err := b.ns.syncLink(b.spec.Link, d.ipv6, d.vips); err != nil {
		return fmt.Errorf("userspace: %w: link %s: %w", backends.ErrApply, b.spec.Link, err)
	}
	local := make(map[netip.Addr]bool, len(nodeIPs)+len(d.vips))
	for _, a := range nodeIPs {
		local[a.Unmap()] = true
	}
	for _, a := range d.vips {
		local[a] = true
	}
	b.local.Store(&local)
	b.picker.Update(next)

	var errs []error
	for k, s := range b.servers {
		if spec, ok := d.listen[k]; !ok || spec.kind != s.kind() {
			s.close()
			delete(b.servers, k)
		}
	}
	for k, spec := range d.listen {
		if s, ok := b.servers[k]; ok {
			s.prune()
			continue
		}
		s, err := b.serve(k, spec.kind)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.servers[k] = s
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("userspace: %w: %w", backends.ErrApply, err)
	}
	b.opts.Logger.Debug("synced", "version", next.Version(), "sockets", len(b.servers), "vips", len(d.vips))
	return nil
}

func (b *Backend) serve(k frontendKey, kind backends.Frontend) (server, error) {
	if k.proto == "UDP" {
		return b.serveUDP(k, kind)
	}
	return b.serveTCP(k, kind)
}

// Close stops serving: every socket and connection is closed, as if the
// process had died. The link and the table stay, as a killed proxy leaves
// them; a new Backend syncs on top of them, and Cleanup removes them.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, s := range b.servers {
		s.close()
		delete(b.servers, k)
	}
	b.closed = true
	return nil
}

// Cleanup closes every socket and removes the link and the tables (both
// families) the backend created, and nothing else. It also removes what a
// killed proxy of the same Options left behind.
func (b *Backend) Cleanup(ctx context.Context) error {
	b.Close()
	return errors.Join(
		b.ns.deleteTables(ctx, b.spec.Table),
		b.ns.deleteLink(b.spec.Link),
	)
}

// pick chooses the endpoint for a new connection or flow to k.
func (b *Backend) pick(k frontendKey, kind backends.Frontend, client netip.Addr) (picker.Result, error) {
	client = client.Unmap()
	req := picker.Request{Client: client, FromNode: (*b.local.Load())[client]}
	if kind == backends.FrontendNodePort {
		return b.picker.PickNodePort(k.proto, k.addr.Port(), req)
	}
	return b.picker.PickFrontend(k.proto, k.addr, req)
}

// decide returns the decision for a flow from client to k, without
// choosing an endpoint.
func (b *Backend) decide(k frontendKey, kind backends.Frontend, client netip.Addr) (backends.Decision, error) {
	client = client.Unmap()
	req := picker.Request{Client: client, FromNode: (*b.local.Load())[client]}
	if kind == backends.FrontendNodePort {
		return b.picker.DecideNodePort(k.proto, k.addr.Port(), req)
	}
	return b.picker.DecideFrontend(k.proto, k.addr, req)
}
