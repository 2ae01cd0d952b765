package endpoints

import (
	"net/netip"
	"strings"
)

// ParseAddr parses an IP address as Kubernetes' API validation and
// kube-proxy read it (k8s.io/utils/net.ParseIPSloppy): IPv4 octets may carry
// leading zeros and are decimal ("010.1.2.3" is 10.1.2.3, never octal), also
// inside an IPv4-mapped IPv6 address; an IPv4-mapped IPv6 address is the
// IPv4 address; zones ("fe80::1%eth0") are rejected.
func ParseAddr(s string) (netip.Addr, bool) {
	a, ok := parseAddr(s)
	if !ok {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseAddr is ParseAddr without unmapping.
func parseAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a, true
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		// An IPv6 address ending in dotted IPv4: normalize that part.
		v4, ok := parseSloppyIPv4(s[i+1:])
		if !ok {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(s[:i+1] + v4.String())
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a, true
	}
	return parseSloppyIPv4(s)
}

// parseSloppyIPv4 accepts dotted-quad text whose octets may carry leading
// zeros, which netip rejects but objects stored by older API servers may hold.
func parseSloppyIPv4(s string) (netip.Addr, bool) {
	var b [4]byte
	for i := range 4 {
		if i > 0 {
			if s == "" || s[0] != '.' {
				return netip.Addr{}, false
			}
			s = s[1:]
		}
		n, rest, ok := decimal(s, 255)
		if !ok {
			return netip.Addr{}, false
		}
		b[i], s = byte(n), rest
	}
	if s != "" {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}

// decimal reads leading decimal digits of s (at least one) as a number no
// larger than max.
func decimal(s string, max int) (n int, rest string, ok bool) {
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
		if n > max {
			return 0, s, false
		}
	}
	return n, s[i:], i > 0
}

// ParsePrefix parses a CIDR as k8s.io/utils/net.ParseCIDRSloppy does, with
// the leniency of [ParseAddr] for its address part. The prefix is returned
// masked ("10.0.0.1/8" -> 10.0.0.0/8), as net.ParseCIDR does. An
// IPv4-mapped address with a length of 96 or more is the IPv4 prefix of the
// remaining bits; with less, it is an IPv6 prefix.
func ParsePrefix(s string) (netip.Prefix, bool) {
	addr, bits, ok := strings.Cut(s, "/")
	if !ok {
		return netip.Prefix{}, false
	}
	a, ok := parseAddr(addr)
	if !ok {
		return netip.Prefix{}, false
	}
	n, rest, ok := decimal(bits, a.BitLen())
	if !ok || rest != "" {
		return netip.Prefix{}, false
	}
	if a.Is4In6() && n >= 96 {
		a, n = a.Unmap(), n-96
	}
	p, err := a.Prefix(n)
	return p, err == nil
}
