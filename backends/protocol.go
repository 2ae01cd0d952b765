package backends

import (
	"strings"

	v1 "k8s.io/api/core/v1"
)

// ProtocolName is a protocol as nft, iptables and ipvsadm spell it: "tcp",
// "udp", "sctp"; any other value lower-cased.
func ProtocolName(p v1.Protocol) string {
	switch p {
	case v1.ProtocolTCP:
		return "tcp"
	case v1.ProtocolUDP:
		return "udp"
	case v1.ProtocolSCTP:
		return "sctp"
	}
	return strings.ToLower(string(p))
}

// ProtocolNumber is the IP protocol number of p: 6, 17 or 132; 0 for a
// protocol a Service cannot have.
func ProtocolNumber(p v1.Protocol) uint8 {
	switch p {
	case v1.ProtocolTCP:
		return 6
	case v1.ProtocolUDP:
		return 17
	case v1.ProtocolSCTP:
		return 132
	}
	return 0
}
