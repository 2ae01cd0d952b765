package nftables

import (
	"crypto/sha256"
	"encoding/base32"
	"net/netip"
	"strconv"
	"strings"

	"github.com/lbkit/lbkit/servicemap"
)

// Names of the objects every lbkit table holds.
const (
	chainServices        = "services"
	chainMasquerading    = "masquerading"
	chainMarkMasq        = "mark-for-masquerade"
	chainFirewallCheck   = "firewall-check"
	chainServiceEPCheck  = "service-endpoints-check"
	chainNodePortEPCheck = "nodeport-endpoints-check"
	chainReject          = "reject-chain"
	chainClusterIPsCheck = "cluster-ips-check"

	mapServiceIPs       = "service-ips"
	mapServiceNodePorts = "service-nodeports"
	mapNoEPServices     = "no-endpoint-services"
	mapNoEPNodePorts    = "no-endpoint-nodeports"
	mapFirewallIPs      = "firewall-ips"
	setHairpin          = "hairpin"
	setHealthCheck      = "health-check-nodeports"
	setClusterIPs       = "cluster-ips"
	setClusterCIDRs     = "cluster-cidrs"
	setNodePortAddrs    = "nodeport-addresses"
	setServiceCIDRs     = "service-cidrs"
)

// Per service port objects are named <prefix><base>, where base is
// "<namespace>/<name>[/<port name>]/<protocol>", cut to baseReadableMax
// characters, then "-" and eight characters of a hash of the full identity.
// Kubernetes names never contain "/", so the readable part is unambiguous
// unless it is cut; the hash keeps cut names apart, and every name stays
// under 64 characters (nft allows 256, but people read these).
const (
	prefixCluster  = "svc-"   // endpoints for Cluster-policy traffic
	prefixLocal    = "local-" // endpoints for Local-policy traffic
	prefixExternal = "ext-"   // node ports, external and load-balancer IPs
	prefixFirewall = "fw-"    // loadBalancerSourceRanges check (chain)
	prefixSources  = "fwsrc-" // loadBalancerSourceRanges (interval set)
	prefixAffinity = "aff-"   // ClientIP affinity, one set per endpoint

	baseReadableMax = 48
)

// appendPortBase appends the part of a port's object names after the
// prefix.
func appendPortBase(buf []byte, n servicemap.ServicePortName, proto string) []byte {
	start := len(buf)
	buf = append(buf, n.Namespace...)
	buf = append(buf, '/')
	buf = append(buf, n.Name...)
	if n.Port != "" {
		buf = append(buf, '/')
		buf = append(buf, n.Port...)
	}
	buf = append(buf, '/')
	buf = append(buf, proto...)
	readable := start + min(len(buf)-start, baseReadableMax)
	// Hash the identity with separators that cannot occur in the names.
	id := len(buf)
	buf = append(buf, n.Namespace...)
	buf = append(buf, 0)
	buf = append(buf, n.Name...)
	buf = append(buf, 0)
	buf = append(buf, n.Port...)
	buf = append(buf, 0)
	buf = append(buf, proto...)
	sum := sha256.Sum256(buf[id:])
	buf = append(buf[:readable], '-')
	buf = buf[:readable+1+8]
	lowerBase32.Encode(buf[readable+1:], sum[:5])
	return buf
}

// affinitySetName names the affinity set of one endpoint of a port:
// "aff-<hash>-<ip>-<port>", the hash covering the port, the endpoint and the
// timeout. A set's timeout cannot be changed in place, so a new timeout
// means a new set.
func affinitySetName(n servicemap.ServicePortName, ep netip.AddrPort, timeoutSeconds int) string {
	ip := ep.Addr().String()
	h := shortHash(n.Namespace, n.Name, n.Port, string(n.Protocol), ep.String(), strconv.Itoa(timeoutSeconds))
	return prefixAffinity + h + "-" + strings.ReplaceAll(ip, ":", ".") + "-" + strconv.Itoa(int(ep.Port()))
}

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// shortHash returns 8 base32 characters (40 bits) of the SHA-256 of parts.
func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var out [8]byte
	lowerBase32.Encode(out[:], sum[:5])
	return string(out[:])
}
