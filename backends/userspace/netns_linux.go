//go:build linux

package userspace

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netNS is the network namespace a Backend serves in. Sockets belong to the
// namespace of the thread that creates them, and a goroutine may run on any
// thread, so every socket (and every run of the nft tool) is made on a
// thread moved into the namespace for the call. (Comparing with the
// process's namespace to skip the move is not reliable: the main thread,
// which /proc/self/ns names, may itself be visiting another namespace.)
type netNS struct {
	handle netns.NsHandle
	nl     *netlink.Handle
}

func currentNetNS() (*netNS, error) {
	h, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("open the current network namespace: %w", err)
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &netNS{handle: h, nl: nl}, nil
}

// do runs f on a thread inside the namespace.
func (n *netNS) do(f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(n.handle); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace: %w", err)
	}
	defer func() {
		// A thread that cannot go back stays locked, and the runtime
		// retires it when the goroutine ends.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return f()
}

// dial connects to an endpoint from inside the namespace.
func (n *netNS) dial(network string, addr netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.do(func() error {
		var err error
		c, err = (&net.Dialer{Timeout: timeout}).Dial(network, addr.String())
		return err
	})
	return c, err
}

// nodeAddrs returns the addresses of every link except loopback and the
// proxy's own.
func (n *netNS) nodeAddrs(own string) ([]netip.Addr, error) {
	links, err := n.nl.LinkList()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, l := range links {
		if l.Attrs().Name == own || l.Attrs().Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := n.nl.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// syncLink makes the link exist, be up, and carry exactly vips among its
// addresses of the family (a dummy link where the kernel has the type, an
// empty bridge otherwise: both are local and send nothing anywhere).
func (n *netNS) syncLink(name string, ipv6 bool, vips []netip.Addr) error {
	l, err := n.nl.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if !errors.As(err, &notFound) {
			return err
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		if err := n.nl.LinkAdd(&netlink.Dummy{LinkAttrs: attrs}); err != nil {
			if err := n.nl.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
				return fmt.Errorf("create link: %w", err)
			}
		}
		if l, err = n.nl.LinkByName(name); err != nil {
			return err
		}
	}
	if err := n.nl.LinkSetUp(l); err != nil {
		return err
	}
	family := netlink.FAMILY_V4
	if ipv6 {
		family = netlink.FAMILY_V6
	}
	have, err := n.nl.AddrList(l, family)
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range have {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.IsLinkLocalUnicast() {
			continue
		}
		if !slices.Contains(vips, ip.Unmap()) {
			errs = append(errs, n.nl.AddrDel(l, &a))
		}
	}
	for _, v := range vips {
		if slices.ContainsFunc(have, func(a netlink.Addr) bool {
			ip, _ := netip.AddrFromSlice(a.IP)
			return ip.Unmap() == v
		}) {
			continue
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: v.AsSlice(), Mask: net.CIDRMask(v.BitLen(), v.BitLen())}}
		if v.Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := n.nl.AddrAdd(l, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add %v: %w", v, err))
		}
	}
	return errors.Join(errs...)
}

func (n *netNS) deleteLink(name string) error {
	l, err := n.nl.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		return err
	}
	return n.nl.LinkDel(l)
}

// deleteTables removes the table of both families.
func (n *netNS) deleteTables(ctx context.Context, table string) error {
	return errors.Join(n.deleteTable(ctx, table, false), n.deleteTable(ctx, table, true))
}
