package endpoints

import (
	"net/netip"
	"strconv"
	"strings"
)

// ParseAddr parses an IP address as Kubernetes' API validation and
// kube-proxy read it: IPv4 with leading zeros ("010.1.2.3") is decimal
// (10.1.2.3), never octal; an IPv4-mapped IPv6 address is the IPv4 address;
// zones ("fe80::1%eth0") are rejected.
func ParseAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	return parseSloppyIPv4(s)
}

// parseSloppyIPv4 accepts dotted-quad text whose octets may carry leading
// zeros, which netip rejects but older Kubernetes objects may hold.
func parseSloppyIPv4(s string) (netip.Addr, bool) {
	var b [4]byte
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	for i, p := range parts {
		if p == "" || len(p) > 3 || strings.TrimLeft(p, "0123456789") != "" {
			return netip.Addr{}, false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n > 255 {
			return netip.Addr{}, false
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b), true
}

// ParsePrefix parses a CIDR with the same leniency as [ParseAddr] for its
// address part. The prefix is returned masked ("10.0.0.1/8" -> 10.0.0.0/8),
// as net.ParseCIDR does.
func ParsePrefix(s string) (netip.Prefix, bool) {
	addr, bits, ok := strings.Cut(s, "/")
	if !ok {
		return netip.Prefix{}, false
	}
	a, ok := ParseAddr(addr)
	if !ok {
		return netip.Prefix{}, false
	}
	if bits == "" || len(bits) > 3 || strings.TrimLeft(bits, "0123456789") != "" {
		return netip.Prefix{}, false
	}
	n, err := strconv.Atoi(bits)
	if err != nil {
		return netip.Prefix{}, false
	}
	p, err := a.Prefix(n)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p, true
}
