package iptables

import (
	"crypto/sha256"
	"encoding/base32"
	"net/netip"
	"strings"
)

// hashLen is the length of the hash in a chain name.
const hashLen = 16

// appendHash appends 16 characters of base32(sha256(key)) to dst: stable
// across processes and versions, short enough for iptables' 28-character
// limit. Those characters encode the sum's first 10 bytes, so only they are
// encoded.
func appendHash(dst, key []byte) []byte {
	sum := sha256.Sum256(key)
	var h [hashLen]byte
	base32.StdEncoding.Encode(h[:], sum[:10])
	return append(dst, h[:]...)
}

// A port's chain names hash its name and protocol, lower-cased as
// kube-proxy writes them ("ns/svc:http/tcp"); an endpoint's chain hashes
// the same followed by the endpoint ("ns/svc:http/tcp10.0.0.1:80").

// appendPortKey appends a port's hash key to dst.
func appendPortKey(dst []byte, name, protocol string) []byte {
	dst = append(dst, name...)
	dst = append(dst, '/')
	for i := range len(protocol) {
		c := protocol[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// chainKind is the kind of a chain that belongs to one service port.
type chainKind uint8

const (
	chainSVC chainKind = iota // cluster-policy endpoints
	chainSVL                  // local-policy endpoints
	chainEXT                  // external traffic
	chainFW                   // loadBalancerSourceRanges
	chainSEP                  // one endpoint
)

var kindNames = [...]string{chainSVC: "-SVC-", chainSVL: "-SVL-", chainEXT: "-EXT-", chainFW: "-FW-", chainSEP: "-SEP-"}

// appendChainName appends prefix, the kind and a hash.
func appendChainName(dst []byte, prefix string, kind chainKind, hash []byte) []byte {
	dst = append(dst, prefix...)
	dst = append(dst, kindNames[kind]...)
	return append(dst, hash...)
}

// appendHost appends a as a one-address prefix ("10.0.0.1/32").
func appendHost(dst []byte, a netip.Addr) []byte {
	return netip.PrefixFrom(a, a.BitLen()).AppendTo(dst)
}

// needsQuotes reports whether a comment made of s must be quoted to be one
// iptables-restore word.
func needsQuotes(s string) bool { return strings.ContainsAny(s, " \t\"'") }

// appendComment appends "-m comment --comment " and the comment a+b+c as
// one word: quoted when it holds a blank or a quote, with double quotes
// turned into single ones.
func appendComment(dst []byte, a, b, c string) []byte {
	dst = append(dst, "-m comment --comment "...)
	if !needsQuotes(a) && !needsQuotes(b) && !needsQuotes(c) {
		dst = append(dst, a...)
		dst = append(dst, b...)
		return append(dst, c...)
	}
	dst = append(dst, '"')
	dst = appendUnquoted(dst, a)
	dst = appendUnquoted(dst, b)
	dst = appendUnquoted(dst, c)
	return append(dst, '"')
}

// appendUnquoted appends s with its double quotes turned into single ones.
func appendUnquoted(dst []byte, s string) []byte {
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, '\'')
		s = s[i+1:]
	}
}
