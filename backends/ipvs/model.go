package ipvs

import (
	"cmp"
	"net/netip"
	"strconv"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
)

// VirtualServer is one IPVS virtual service: an address, port and protocol
// that IPVS balances over its real servers. It is a comparable value.
type VirtualServer struct {
	Addr     netip.Addr
	Port     uint16
	Protocol v1.Protocol // TCP, UDP or SCTP
	// Scheduler is the IPVS scheduler's name ("rr", "lc", ...).
	Scheduler string
	// Persistent with Timeout (seconds) is ClientIP session affinity: IPVS
	// sends a client to the same real server for Timeout seconds after its
	// last connection ends. The persistence netmask is always one address.
	Persistent bool
	Timeout    uint32
}

// Key returns the virtual server's identity in the kernel.
func (vs VirtualServer) Key() Key { return Key{vs.Addr, vs.Port, vs.Protocol} }

// sameConfig reports whether two virtual servers with the same key are
// programmed alike.
func (vs VirtualServer) sameConfig(o VirtualServer) bool {
	return vs.Scheduler == o.Scheduler && vs.Persistent == o.Persistent &&
		(!vs.Persistent || vs.Timeout == o.Timeout)
}

// Key identifies a virtual server: address, port and protocol.
type Key struct {
	Addr     netip.Addr
	Port     uint16
	Protocol v1.Protocol
}

// String returns "10.96.0.10:80/TCP" ("[fd00::1]:80/TCP" for IPv6).
func (k Key) String() string {
	return netip.AddrPortFrom(k.Addr, k.Port).String() + "/" + string(k.Protocol)
}

// Compare orders keys by address, protocol, then port.
func (k Key) Compare(o Key) int {
	return cmp.Or(k.Addr.Compare(o.Addr), cmp.Compare(k.Protocol, o.Protocol), cmp.Compare(k.Port, o.Port))
}

// RealServer is one destination of a virtual server.
type RealServer struct {
	Addr netip.AddrPort
	// Weight 0 stops new connections (the server is draining).
	Weight int
	// Forward is the forwarding method. lbkit programs ForwardMasq (its
	// zero value); a real server found with another method is updated.
	Forward Forward
	// ActiveConns and InactiveConns are the kernel's connection counts. They
	// are read, never written.
	ActiveConns, InactiveConns int
}

// Forward is an IPVS forwarding method.
type Forward uint32

// Forwarding methods, with the kernel's values.
const (
	ForwardMasq   Forward = 0 // NAT: rewrite the destination (ipvsadm -m)
	ForwardLocal  Forward = 1
	ForwardTunnel Forward = 2 // ipvsadm -i
	ForwardRoute  Forward = 3 // direct routing, ipvsadm -g
)

// SaveLine is the virtual server as `ipvsadm -Sn` writes it, e.g.
// "-A -t 10.96.0.10:80 -s rr -p 600" (Render and ipvsfake print these).
func (vs VirtualServer) SaveLine() string {
	line := "-A " + vs.saveKey() + " -s " + vs.Scheduler
	if vs.Persistent {
		line += " -p " + strconv.FormatUint(uint64(vs.Timeout), 10)
	}
	return line
}

// SaveLine is real server r of vs as `ipvsadm -Sn` writes it, e.g.
// "-a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1".
func (r RealServer) SaveLine(vs VirtualServer) string {
	return "-a " + vs.saveKey() + " -r " + r.Addr.String() + " " + r.Forward.flag() + " -w " + strconv.Itoa(r.Weight)
}

// saveKey is ipvsadm's protocol option with the address and port.
func (vs VirtualServer) saveKey() string {
	flag := "-t"
	switch vs.Protocol {
	case v1.ProtocolUDP:
		flag = "-u"
	case v1.ProtocolSCTP:
		flag = "--sctp-service"
	}
	return flag + " " + netip.AddrPortFrom(vs.Addr, vs.Port).String()
}

// flag is ipvsadm's option for a forwarding method; lbkit programs none
// but masquerade, so the others print as their number.
func (f Forward) flag() string {
	switch f {
	case ForwardMasq:
		return "-m"
	case ForwardRoute:
		return "-g"
	case ForwardTunnel:
		return "-i"
	}
	return "--forward=" + strconv.Itoa(int(f))
}

// Handle is the IPVS table of one network namespace, as the Backend needs
// it. Over the kernel it is generic netlink (github.com/moby/ipvs); tests
// pass a fake. Add fails for an object that exists, Update and Delete for
// one that does not, as the kernel does. Lists return copies, in any order.
type Handle interface {
	VirtualServers() ([]VirtualServer, error)
	AddVirtualServer(VirtualServer) error
	UpdateVirtualServer(VirtualServer) error
	// DeleteVirtualServer deletes the virtual server with vs's key and all
	// its real servers.
	DeleteVirtualServer(vs VirtualServer) error

	RealServers(vs VirtualServer) ([]RealServer, error)
	AddRealServer(vs VirtualServer, rs RealServer) error
	UpdateRealServer(vs VirtualServer, rs RealServer) error
	DeleteRealServer(vs VirtualServer, rs RealServer) error
}

// Host is the rest of the node the Backend touches: its dummy interface,
// the node's addresses and sysctls, all in one network namespace. Tests
// pass a fake.
type Host interface {
	// EnsureDummy creates the dummy link name if it is missing and sets it up.
	EnsureDummy(name string) error
	// DeleteDummy deletes the link; a missing link is not an error.
	DeleteDummy(name string) error
	// LinkAddrs returns the addresses on the link, nil when the link does
	// not exist.
	LinkAddrs(name string) ([]netip.Addr, error)
	AddLinkAddr(name string, a netip.Addr) error
	DeleteLinkAddr(name string, a netip.Addr) error
	// NodeAddrs returns the addresses on every link but exclude.
	NodeAddrs(exclude string) ([]netip.Addr, error)
	// SetSysctl writes value to /proc/sys/<name>, name as in
	// "net/ipv4/vs/conntrack".
	SetSysctl(name, value string) error
}

// protoNumber and protoName convert between Kubernetes protocols and IP
// protocol numbers; 0 and "" mean not one lbkit programs.
func protoNumber(p v1.Protocol) uint16 { return uint16(backends.ProtocolNumber(p)) }

func protoName(n uint16) v1.Protocol {
	switch n {
	case 6:
		return v1.ProtocolTCP
	case 17:
		return v1.ProtocolUDP
	case 132:
		return v1.ProtocolSCTP
	}
	return ""
}

// nftProto is the protocol as nft spells it in set elements (a protocol
// lbkit does not program never reaches a set).
func nftProto(p v1.Protocol) string { return backends.ProtocolName(p) }

// parseNFTProto reads a protocol as nft prints it: a name or a number.
func parseNFTProto(s string) v1.Protocol {
	switch s {
	case "tcp":
		return v1.ProtocolTCP
	case "udp":
		return v1.ProtocolUDP
	case "sctp":
		return v1.ProtocolSCTP
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return ""
	}
	return protoName(uint16(n))
}
