package iptables

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"github.com/lbkit/lbkit/servicemap"
)

// chainHash returns 16 characters of base32(sha256(s)): stable across
// processes and versions, short enough for iptables' 28-character limit.
func chainHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:16]
}

// portKey is the text a service port's chain names hash: its name and
// protocol, lower-cased as kube-proxy writes them.
func portKey(name servicemap.ServicePortName) string {
	return name.String() + "/" + strings.ToLower(string(name.Protocol))
}

// names are the chains of one service port.
type names struct {
	svc, svl, ext, fw string
}

func (o *Options) portChains(name servicemap.ServicePortName) names {
	h := chainHash(portKey(name))
	return names{
		svc: o.Prefix + "-SVC-" + h,
		svl: o.Prefix + "-SVL-" + h,
		ext: o.Prefix + "-EXT-" + h,
		fw:  o.Prefix + "-FW-" + h,
	}
}

// endpointChain names the chain that DNATs to one endpoint of a port.
func (o *Options) endpointChain(name servicemap.ServicePortName, endpoint string) string {
	return o.Prefix + "-SEP-" + chainHash(portKey(name)+endpoint)
}
