package nftables

import (
	"net/netip"
	"strconv"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
)

// A rule is a list of statements, built as typed values once and written
// two ways: as nft text (Render, the nft transport) by appendText, and as
// netlink expressions by appendExprs. The model holds only the statements
// lbkit writes, so that no rule can mean anything its text does not say.
type rule []stmt

// stmt is one statement: a match, an action or a verdict. Which fields
// count depends on kind.
type stmt struct {
	kind stmtKind
	neg  bool // != (lookups and address matches)
	// keys are the fields a lookup, vmap or set update concatenates; an
	// address match and fib use keys[0].
	keys  [3]field
	nkeys uint8
	name  string // set, map, chain or protocol
	// addr is the address (prefix) of a match, or with n the endpoint of a
	// dnat: a full-length prefix is an address.
	addr netip.Prefix
	n    uint32 // protocol number, conntrack bits, mark, modulus, port
}

type stmtKind uint8

const (
	sLookup     stmtKind = iota + 1 // KEYS [!=] @name
	sVmap                           // KEYS vmap @name (ends the rule)
	sAddr                           // ip saddr|daddr [!=] ADDR
	sCtNew                          // ct state new
	sCtDNAT                         // ct status dnat
	sFibLocal                       // fib saddr|daddr type local
	sProto                          // meta l4proto NAME
	sMarkAny                        // meta mark & n != 0
	sNumgen                         // numgen random mod n == 0
	sMarkOr                         // meta mark set meta mark | n
	sMarkAnd                        // meta mark set meta mark & n
	sUpdate                         // update @name { KEYS }
	sDNAT                           // dnat to ep
	sMasquerade                     // masquerade fully-random
	sReject                         // reject
	sAccept
	sDrop
	sJump
	sGoto
)

// field is a value a rule reads from the packet or its metadata.
type field uint8

const (
	fSaddr   field = iota + 1 // ip saddr, ip6 saddr
	fDaddr                    // ip daddr, ip6 daddr
	fL4proto                  // meta l4proto
	fDport                    // th dport
)

// Conntrack bits (nf_conntrack_common.h) lbkit matches.
const (
	ctStateNewBit   = 0x8
	ctStatusDNATBit = 0x20
)

func keyed(kind stmtKind, name string, keys []field) stmt {
	s := stmt{kind: kind, name: name, nkeys: uint8(len(keys))}
	copy(s.keys[:], keys)
	return s
}

// The statements, by what they read like.

func inSet(set string, keys ...field) stmt    { return keyed(sLookup, set, keys) }
func notInSet(set string, keys ...field) stmt { s := keyed(sLookup, set, keys); s.neg = true; return s }
func vmap(m string, keys ...field) stmt       { return keyed(sVmap, m, keys) }
func update(set string, keys ...field) stmt   { return keyed(sUpdate, set, keys) }
func addrIs(f field, a netip.Addr) stmt {
	return stmt{kind: sAddr, keys: [3]field{f}, nkeys: 1, addr: netip.PrefixFrom(a, a.BitLen())}
}
func addrNotIn(f field, p netip.Prefix) stmt {
	return stmt{kind: sAddr, neg: true, keys: [3]field{f}, nkeys: 1, addr: p}
}
func ctNew() stmt           { return stmt{kind: sCtNew, n: ctStateNewBit} }
func ctDNAT() stmt          { return stmt{kind: sCtDNAT, n: ctStatusDNATBit} }
func fibLocal(f field) stmt { return stmt{kind: sFibLocal, keys: [3]field{f}, nkeys: 1} }
func l4proto(p v1.Protocol) stmt {
	return stmt{kind: sProto, name: backends.ProtocolName(p), n: uint32(backends.ProtocolNumber(p))}
}
func markAny(m uint32) stmt  { return stmt{kind: sMarkAny, n: m} }
func numgen(mod uint32) stmt { return stmt{kind: sNumgen, n: mod} }
func markOr(m uint32) stmt   { return stmt{kind: sMarkOr, n: m} }
func markAnd(m uint32) stmt  { return stmt{kind: sMarkAnd, n: m} }
func dnat(ep netip.AddrPort) stmt {
	return stmt{kind: sDNAT, addr: netip.PrefixFrom(ep.Addr(), ep.Addr().BitLen()), n: uint32(ep.Port())}
}
func masquerade() stmt       { return stmt{kind: sMasquerade} }
func reject() stmt           { return stmt{kind: sReject} }
func accept() stmt           { return stmt{kind: sAccept} }
func drop() stmt             { return stmt{kind: sDrop} }
func jump(chain string) stmt { return stmt{kind: sJump, name: chain} }
func goTo(chain string) stmt { return stmt{kind: sGoto, name: chain} }

// appendText appends the rule as nft writes it, in fam's table.
func (r rule) appendText(buf []byte, fam *family) []byte {
	for i := range r {
		if i > 0 {
			buf = append(buf, ' ')
		}
		buf = r[i].appendText(buf, fam)
	}
	return buf
}

// text returns the rule as nft writes it.
func (r rule) text(fam *family) string { return string(r.appendText(nil, fam)) }

func (s *stmt) appendText(buf []byte, fam *family) []byte {
	switch s.kind {
	case sLookup:
		buf = s.appendKeys(buf, fam)
		if s.neg {
			buf = append(buf, " !="...)
		}
		return append(append(buf, " @"...), s.name...)
	case sVmap:
		buf = s.appendKeys(buf, fam)
		return append(append(buf, " vmap @"...), s.name...)
	case sAddr:
		buf = appendField(buf, s.keys[0], fam)
		if s.neg {
			buf = append(buf, " !="...)
		}
		buf = append(buf, ' ')
		if s.addr.IsSingleIP() {
			return s.addr.Addr().AppendTo(buf)
		}
		return s.addr.AppendTo(buf)
	case sCtNew:
		return append(buf, "ct state new"...)
	case sCtDNAT:
		return append(buf, "ct status dnat"...)
	case sFibLocal:
		if s.keys[0] == fSaddr {
			return append(buf, "fib saddr type local"...)
		}
		return append(buf, "fib daddr type local"...)
	case sProto:
		return append(append(buf, "meta l4proto "...), s.name...)
	case sMarkAny:
		return append(appendHex(append(buf, "meta mark & "...), s.n), " != 0"...)
	case sNumgen:
		buf = strconv.AppendUint(append(buf, "numgen random mod "...), uint64(s.n), 10)
		return append(buf, " == 0"...)
	case sMarkOr:
		return appendHex(append(buf, "meta mark set meta mark | "...), s.n)
	case sMarkAnd:
		return appendHex(append(buf, "meta mark set meta mark & "...), s.n)
	case sUpdate:
		buf = append(append(append(buf, "update @"...), s.name...), " { "...)
		return append(s.appendKeys(buf, fam), " }"...)
	case sDNAT:
		return s.endpoint().AppendTo(append(buf, "dnat to "...))
	case sMasquerade:
		return append(buf, "masquerade fully-random"...)
	case sReject:
		return append(buf, "reject"...)
	case sAccept:
		return append(buf, "accept"...)
	case sDrop:
		return append(buf, "drop"...)
	case sJump:
		return append(append(buf, "jump "...), s.name...)
	case sGoto:
		return append(append(buf, "goto "...), s.name...)
	}
	return buf
}

func (s *stmt) appendKeys(buf []byte, fam *family) []byte {
	for i := range s.nkeys {
		if i > 0 {
			buf = append(buf, " . "...)
		}
		buf = appendField(buf, s.keys[i], fam)
	}
	return buf
}

func appendField(buf []byte, f field, fam *family) []byte {
	switch f {
	case fSaddr:
		return append(append(buf, fam.IP...), " saddr"...)
	case fDaddr:
		return append(append(buf, fam.IP...), " daddr"...)
	case fL4proto:
		return append(buf, "meta l4proto"...)
	}
	return append(buf, "th dport"...)
}

func appendHex(buf []byte, v uint32) []byte {
	return strconv.AppendUint(append(buf, "0x"...), uint64(v), 16)
}

// endpoint is a dnat's destination.
func (s *stmt) endpoint() netip.AddrPort { return netip.AddrPortFrom(s.addr.Addr(), uint16(s.n)) }
