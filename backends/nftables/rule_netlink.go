//go:build linux

package nftables

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// appendExprs appends the expressions nft generates for r (compare
// `nft --debug=netlink`) in a table of family nfproto (unix.NFPROTO_IPV4
// or NFPROTO_IPV6). Packet fields are compared in network byte order; what
// the kernel computes (marks, conntrack bits, fib results, numgen) in host
// order.
func (r rule) appendExprs(out []expr.Any, nfproto byte) []expr.Any {
	for i := range r {
		out = r[i].appendExprs(out, nfproto)
	}
	return out
}

func (s *stmt) appendExprs(out []expr.Any, nfproto byte) []expr.Any {
	v6 := nfproto == unix.NFPROTO_IPV6
	switch s.kind {
	case sLookup, sVmap:
		out = s.loadKeys(out, v6)
		return append(out, &expr.Lookup{SourceRegister: 1, SetName: s.name, Invert: s.neg, IsDestRegSet: s.kind == sVmap})
	case sAddr:
		return appendAddrMatch(out, s.keys[0], s.addr, s.neg, v6)
	case sCtNew, sCtDNAT:
		key := expr.CtKeySTATE
		if s.kind == sCtDNAT {
			key = expr.CtKeySTATUS
		}
		// A flag test: (ct & bits) != 0.
		return append(out, &expr.Ct{Key: key, Register: 1}, andMask(hostU32(s.n)),
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	case sFibLocal:
		return append(out, &expr.Fib{Register: 1, FlagSADDR: s.keys[0] == fSaddr, FlagDADDR: s.keys[0] != fSaddr, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: hostU32(unix.RTN_LOCAL)})
	case sProto:
		return append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(s.n)}})
	case sMarkAny:
		return append(out, &expr.Meta{Key: expr.MetaKeyMARK, Register: 1}, andMask(hostU32(s.n)),
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	case sNumgen:
		return append(out, &expr.Numgen{Register: 1, Modulus: s.n, Type: unix.NFT_NG_RANDOM},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: make([]byte, 4)})
	case sMarkOr, sMarkAnd:
		// mark = (mark & mask) ^ xor
		mask, xor := ^s.n, s.n
		if s.kind == sMarkAnd {
			mask, xor = s.n, 0
		}
		return append(out, &expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: hostU32(mask), Xor: hostU32(xor)},
			&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1})
	case sUpdate:
		out = s.loadKeys(out, v6)
		return append(out, &expr.Dynset{SrcRegKey: 1, SetName: s.name, Operation: unix.NFT_DYNSET_OP_UPDATE})
	case sDNAT:
		// The address in register 1, the port in register 2.
		return append(out, &expr.Immediate{Register: 1, Data: s.addr.Addr().AsSlice()},
			&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, uint16(s.n))},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(nfproto), RegAddrMin: 1, RegProtoMin: 2, Specified: true})
	case sMasquerade:
		return append(out, &expr.Masq{FullyRandom: true})
	case sReject:
		// nft's default: ICMP (v6) port unreachable.
		code := uint8(3)
		if v6 {
			code = 4
		}
		return append(out, &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: code})
	case sAccept:
		return append(out, &expr.Verdict{Kind: expr.VerdictAccept})
	case sDrop:
		return append(out, &expr.Verdict{Kind: expr.VerdictDrop})
	case sJump:
		return append(out, &expr.Verdict{Kind: expr.VerdictJump, Chain: s.name})
	case sGoto:
		return append(out, &expr.Verdict{Kind: expr.VerdictGoto, Chain: s.name})
	}
	return out
}

// fieldSize is the number of bytes a field loads.
func fieldSize(f field, v6 bool) uint32 {
	switch f {
	case fSaddr, fDaddr:
		if v6 {
			return 16
		}
		return 4
	case fL4proto:
		return 1
	}
	return 2
}

// load loads size bytes of f into register reg.
func load(f field, reg, size uint32, v6 bool) expr.Any {
	switch f {
	case fSaddr, fDaddr:
		off := uint32(12) // ip saddr
		switch {
		case v6 && f == fSaddr:
			off = 8
		case v6:
			off = 24
		case f == fDaddr:
			off = 16
		}
		return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: size}
	case fL4proto:
		return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}
	}
	return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: size}
}

// loadKeys loads the statement's keys one after the other, each in as many
// 32-bit registers as it needs, as nft does. nft names a register by its
// 16-byte number (NFT_REG_1...) when the field starts on a 16-byte boundary
// and by its 32-bit number (NFT_REG32_00...) otherwise. Three fields fit
// the registers.
func (s *stmt) loadKeys(out []expr.Any, v6 bool) []expr.Any {
	words := uint32(0)
	for _, f := range s.keys[:s.nkeys] {
		reg := unix.NFT_REG32_00 + words
		if words%4 == 0 {
			reg = unix.NFT_REG_1 + words/4
		}
		size := fieldSize(f, v6)
		out = append(out, load(f, uint32(reg), size, v6))
		words += (size + 3) / 4
	}
	return out
}

// appendAddrMatch compares an address field with an address or prefix.
// Like nft, a prefix on a byte boundary loads only its bytes; another one
// loads the address and masks it.
func appendAddrMatch(out []expr.Any, f field, p netip.Prefix, neg, v6 bool) []expr.Any {
	op := expr.CmpOpEq
	if neg {
		op = expr.CmpOpNeq
	}
	p = p.Masked()
	addr := p.Addr().AsSlice()
	size, bits := fieldSize(f, v6), p.Bits()
	switch {
	case bits == 8*len(addr):
		return append(out, load(f, 1, size, v6), &expr.Cmp{Op: op, Register: 1, Data: addr})
	case bits > 0 && bits%8 == 0:
		return append(out, load(f, 1, uint32(bits/8), v6), &expr.Cmp{Op: op, Register: 1, Data: addr[:bits/8]})
	}
	mask := make([]byte, len(addr))
	for i := range bits {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return append(out, load(f, 1, size, v6), andMask(mask), &expr.Cmp{Op: op, Register: 1, Data: addr})
}

// andMask is register 1 &= mask.
func andMask(mask []byte) *expr.Bitwise {
	return &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(mask)), Mask: mask, Xor: make([]byte, len(mask))}
}

func hostU32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
