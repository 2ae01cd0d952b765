//go:build linux

package ipvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/lbkit/lbkit/backends"
)

// kernel is the real Handle and Host of one network namespace.
type kernel struct {
	ipvs  Handle
	host  Host
	close func()
}

// openKernel checks for IPVS and opens netlink sockets in the calling
// thread's network namespace.
//
// github.com/moby/ipvs answers every request with success on a kernel
// without IPVS (it never resolves the generic netlink family, and sends
// to family 0), so the family is resolved here first, and a listing must
// succeed too.
func openKernel() (*kernel, error) {
	if _, err := netlink.GenlFamilyGet("IPVS"); err != nil {
		return nil, unusable("the kernel has no IPVS (load the ip_vs module): generic netlink family IPVS", err)
	}
	ih, err := ipvs.New("")
	if err != nil {
		return nil, unusable("open IPVS netlink socket", err)
	}
	if _, err := ih.GetServices(); err != nil {
		ih.Close()
		return nil, unusable("list virtual servers", err)
	}
	nh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		ih.Close()
		return nil, fmt.Errorf("ipvs: open rtnetlink socket: %w", backends.WithCause(err))
	}
	return &kernel{
		ipvs:  &ipvsHandle{h: ih},
		host:  &netlinkHost{h: nh},
		close: func() { ih.Close(); nh.Close() },
	}, nil
}

// ipvsHandle adapts github.com/moby/ipvs to Handle.
type ipvsHandle struct{ h *ipvs.Handle }

// Flags and netmasks of the kernel's IPVS interface.
const (
	svcFlagPersistent = 0x1 // IP_VS_SVC_F_PERSISTENT
	netmask4          = 0xffffffff
	netmask6          = 128
)

func toService(vs VirtualServer) *ipvs.Service {
	s := &ipvs.Service{
		Address:       net.IP(vs.Addr.AsSlice()),
		Protocol:      protoNumber(vs.Protocol),
		Port:          vs.Port,
		SchedName:     vs.Scheduler,
		AddressFamily: unix.AF_INET,
		Netmask:       netmask4,
	}
	if vs.Addr.Is6() {
		s.AddressFamily, s.Netmask = unix.AF_INET6, netmask6
	}
	if vs.Persistent {
		s.Flags |= svcFlagPersistent
		s.Timeout = vs.Timeout
	}
	return s
}

func (k *ipvsHandle) VirtualServers() ([]VirtualServer, error) {
	svcs, err := k.h.GetServices()
	if err != nil {
		return nil, err
	}
	out := make([]VirtualServer, 0, len(svcs))
	for _, s := range svcs {
		a, ok := netip.AddrFromSlice(s.Address)
		proto := protoName(s.Protocol)
		if s.FWMark != 0 || !ok || proto == "" {
			continue // not a kind lbkit makes
		}
		vs := VirtualServer{Addr: a.Unmap(), Port: s.Port, Protocol: proto, Scheduler: s.SchedName}
		if s.Flags&svcFlagPersistent != 0 {
			vs.Persistent, vs.Timeout = true, s.Timeout
		}
		out = append(out, vs)
	}
	return out, nil
}

func (k *ipvsHandle) AddVirtualServer(vs VirtualServer) error { return k.h.NewService(toService(vs)) }
func (k *ipvsHandle) UpdateVirtualServer(vs VirtualServer) error {
	return k.h.UpdateService(toService(vs))
}
func (k *ipvsHandle) DeleteVirtualServer(vs VirtualServer) error {
	return k.h.DelService(toService(vs))
}

func toDestination(rs RealServer) *ipvs.Destination {
	d := &ipvs.Destination{
		Address:         net.IP(rs.Addr.Addr().AsSlice()),
		Port:            rs.Addr.Port(),
		Weight:          rs.Weight,
		ConnectionFlags: uint32(rs.Forward),
		AddressFamily:   unix.AF_INET,
	}
	if rs.Addr.Addr().Is6() {
		d.AddressFamily = unix.AF_INET6
	}
	return d
}

func (k *ipvsHandle) RealServers(vs VirtualServer) ([]RealServer, error) {
	dsts, err := k.h.GetDestinations(toService(vs))
	if err != nil {
		return nil, err
	}
	out := make([]RealServer, 0, len(dsts))
	for _, d := range dsts {
		a, ok := netip.AddrFromSlice(d.Address)
		if !ok {
			continue
		}
		out = append(out, RealServer{
			Addr:          netip.AddrPortFrom(a.Unmap(), d.Port),
			Weight:        d.Weight,
			Forward:       Forward(d.ConnectionFlags & ipvs.ConnectionFlagFwdMask),
			ActiveConns:   d.ActiveConnections,
			InactiveConns: d.InactiveConnections,
		})
	}
	return out, nil
}

func (k *ipvsHandle) AddRealServer(vs VirtualServer, rs RealServer) error {
	return k.h.NewDestination(toService(vs), toDestination(rs))
}

func (k *ipvsHandle) UpdateRealServer(vs VirtualServer, rs RealServer) error {
	return k.h.UpdateDestination(toService(vs), toDestination(rs))
}

func (k *ipvsHandle) DeleteRealServer(vs VirtualServer, rs RealServer) error {
	return k.h.DelDestination(toService(vs), toDestination(rs))
}

// netlinkHost implements Host over rtnetlink and /proc/sys.
type netlinkHost struct{ h *netlink.Handle }

// dumpAttempts bounds retries of a dump the kernel reports as interrupted.
const dumpAttempts = 3

func (n *netlinkHost) link(name string) (netlink.Link, error) {
	l, err := n.h.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	return l, err
}

func (n *netlinkHost) EnsureDummy(name string) error {
	l, err := n.link(name)
	if err != nil {
		return err
	}
	if l == nil {
		if err := n.h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			return fmt.Errorf("create dummy link (needs the dummy module): %w", err)
		}
		if l, err = n.h.LinkByName(name); err != nil {
			return err
		}
	} else if l.Type() != "dummy" {
		return fmt.Errorf("link %s exists with type %s, not dummy", name, l.Type())
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		return n.h.LinkSetUp(l)
	}
	return nil
}

func (n *netlinkHost) DeleteDummy(name string) error {
	l, err := n.link(name)
	if err != nil || l == nil {
		return err
	}
	if l.Type() != "dummy" {
		return fmt.Errorf("link %s has type %s, not dummy; left alone", name, l.Type())
	}
	return n.h.LinkDel(l)
}

func (n *netlinkHost) addrs(l netlink.Link) ([]netlink.Addr, error) {
	var err error
	for range dumpAttempts {
		var as []netlink.Addr
		if as, err = n.h.AddrList(l, netlink.FAMILY_ALL); err == nil {
			return as, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, err
}

func (n *netlinkHost) LinkAddrs(name string) ([]netip.Addr, error) {
	l, err := n.link(name)
	if err != nil || l == nil {
		return nil, err
	}
	as, err := n.addrs(l)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

func hostAddr(a netip.Addr) *netlink.Addr {
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}}
	if a.Is6() {
		addr.Flags = unix.IFA_F_NODAD // usable at once, and never "tentative"
	}
	return addr
}

func (n *netlinkHost) AddLinkAddr(name string, a netip.Addr) error {
	l, err := n.h.LinkByName(name)
	if err != nil {
		return err
	}
	return n.h.AddrAdd(l, hostAddr(a))
}

func (n *netlinkHost) DeleteLinkAddr(name string, a netip.Addr) error {
	l, err := n.h.LinkByName(name)
	if err != nil {
		return err
	}
	return n.h.AddrDel(l, hostAddr(a))
}

func (n *netlinkHost) NodeAddrs(exclude string) ([]netip.Addr, error) {
	skip := -1
	if l, err := n.link(exclude); err != nil {
		return nil, err
	} else if l != nil {
		skip = l.Attrs().Index
	}
	as, err := n.addrs(nil)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range as {
		if a.LinkIndex == skip {
			continue
		}
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// SetSysctl writes /proc/sys in the calling thread's network namespace:
// /proc/sys/net shows the namespace of the thread that opens the file.
func (n *netlinkHost) SetSysctl(name, value string) error {
	if strings.Contains(name, "..") {
		return fmt.Errorf("bad sysctl name %q", name)
	}
	return os.WriteFile(filepath.Join("/proc/sys", name), []byte(value), 0)
}
