//go:build linux

package nftables

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The statements of a rule that act rather than match (marks, set
// updates, NAT), and the constants a match compares with.

var (
	protoNumbers = map[string]byte{
		"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58, "esp": 50, "ah": 51, "gre": 47,
	}
	// Conntrack state and status bits (nf_conntrack_common.h).
	ctStates   = map[string]uint32{"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
	ctStatuses = map[string]uint32{
		"expected": 1, "seen-reply": 2, "assured": 4, "confirmed": 8, "snat": 0x10, "dnat": 0x20, "dying": 0x200,
	}
	// Route types (rtnetlink.h), as fib's address type.
	fibTypes = map[string]uint32{
		"unspec": 0, "unicast": 1, "local": 2, "broadcast": 3, "anycast": 4,
		"multicast": 5, "blackhole": 6, "unreachable": 7, "prohibit": 8,
	}
)

// number consumes a constant of kind k and returns its encoding.
func (p *ruleParser) number(k valueKind) ([]byte, error) {
	t := p.next()
	if t == "" {
		return nil, p.errorf("expected a value")
	}
	var v uint64
	var err error
	switch k {
	case vProto:
		if n, ok := protoNumbers[t]; ok {
			return []byte{n}, nil
		}
		if v, err = strconv.ParseUint(t, 0, 8); err != nil {
			return nil, p.errorf("bad protocol %q", t)
		}
		return []byte{byte(v)}, nil
	case vPort:
		if v, err = strconv.ParseUint(t, 0, 16); err != nil {
			return nil, p.errorf("bad port %q", t)
		}
		return binary.BigEndian.AppendUint16(nil, uint16(v)), nil
	case vCtState, vCtStatus:
		names := ctStates
		if k == vCtStatus {
			names = ctStatuses
		}
		var bits uint32
		for _, name := range strings.Split(t, ",") {
			b, ok := names[name]
			if !ok {
				return nil, p.errorf("unknown conntrack flag %q", name)
			}
			bits |= b
		}
		v = uint64(bits)
	case vFibType:
		n, ok := fibTypes[t]
		if !ok {
			return nil, p.errorf("unknown address type %q", t)
		}
		v = uint64(n)
	case vU32:
		if v, err = strconv.ParseUint(t, 0, 32); err != nil {
			return nil, p.errorf("bad number %q", t)
		}
	default:
		return nil, p.errorf("this field takes no number")
	}
	return binary.NativeEndian.AppendUint32(nil, uint32(v)), nil
}

// markSet parses "meta mark set meta mark (&|^) N" and "meta mark set N".
func (p *ruleParser) markSet() error {
	p.pos += 3
	set := &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}
	if p.peek() != "meta" {
		v, err := p.number(vU32)
		if err != nil {
			return err
		}
		p.emit(&expr.Immediate{Register: 1, Data: v}, set)
		return nil
	}
	p.pos++
	if err := p.expect("mark"); err != nil {
		return err
	}
	op := p.next()
	arg, err := p.number(vU32)
	if err != nil {
		return err
	}
	n := binary.NativeEndian.Uint32(arg)
	var mask, xor uint32
	switch op {
	case "&":
		mask = n
	case "|":
		mask, xor = ^n, n
	case "^":
		mask, xor = ^uint32(0), n
	default:
		return p.errorf("expected &, | or ^")
	}
	p.emit(&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, mask), Xor: binary.NativeEndian.AppendUint32(nil, xor)},
		set)
	return nil
}

// dynset parses "update|add @SET { SELECTOR [. SELECTOR]... }".
func (p *ruleParser) dynset() error {
	d := &expr.Dynset{SrcRegKey: 1, Operation: unix.NFT_DYNSET_OP_UPDATE}
	if p.next() == "add" {
		d.Operation = unix.NFT_DYNSET_OP_ADD
	}
	name, ok := strings.CutPrefix(p.next(), "@")
	if !ok || name == "" {
		return p.errorf("expected @set")
	}
	d.SetName = unquote(name)
	if err := p.expect("{"); err != nil {
		return err
	}
	var sels []selector
	for {
		s, err := p.selector()
		if err != nil {
			return err
		}
		sels = append(sels, s)
		if p.peek() != "." {
			break
		}
		p.pos++
	}
	if err := p.expect("}"); err != nil {
		return err
	}
	if err := p.loadConcat(sels); err != nil {
		return err
	}
	p.emit(d)
	return nil
}

// nat parses "dnat|snat to ADDR[:PORT]" ("[ADDR6]:PORT" for IPv6). The
// address goes in register 1 and the port in register 2, as nft does.
func (p *ruleParser) nat() error {
	typ := expr.NATTypeDestNAT
	if p.next() == "snat" {
		typ = expr.NATTypeSourceNAT
	}
	if err := p.expect("to"); err != nil {
		return err
	}
	t := p.next()
	var addr netip.Addr
	var port uint16
	var hasPort bool
	var err error
	switch {
	case strings.HasPrefix(t, "["):
		var ap netip.AddrPort
		if ap, err = netip.ParseAddrPort(t); err == nil {
			addr, port, hasPort = ap.Addr(), ap.Port(), true
		} else if strings.HasSuffix(t, "]") {
			addr, err = netip.ParseAddr(t[1 : len(t)-1])
		}
	case p.fam == unix.NFPROTO_IPV4 && strings.Contains(t, ":"):
		var ap netip.AddrPort
		if ap, err = netip.ParseAddrPort(t); err == nil {
			addr, port, hasPort = ap.Addr(), ap.Port(), true
		}
	default:
		addr, err = netip.ParseAddr(t)
	}
	if err != nil || !addr.IsValid() || addr.Zone() != "" {
		return p.errorf("bad NAT address %q", t)
	}
	if addr.Is6() != (p.fam == unix.NFPROTO_IPV6) {
		return p.errorf("%q is not of the table's family", t)
	}
	nat := &expr.NAT{Type: typ, Family: uint32(p.fam), RegAddrMin: 1}
	p.emit(&expr.Immediate{Register: 1, Data: addr.AsSlice()})
	if hasPort {
		p.emit(&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, port)})
		nat.RegProtoMin, nat.Specified = 2, true
	}
	p.emit(nat)
	return nil
}

// masquerade parses "masquerade [random|fully-random|persistent[,...]]".
func (p *ruleParser) masquerade() error {
	p.pos++
	m := &expr.Masq{}
	if t := p.peek(); t != "" && !isStatementStart(t) {
		for _, f := range strings.Split(t, ",") {
			switch f {
			case "random":
				m.Random = true
			case "fully-random":
				m.FullyRandom = true
			case "persistent":
				m.Persistent = true
			default:
				return p.errorf("unknown masquerade flag %q", f)
			}
		}
		p.pos++
	}
	p.emit(m)
	return nil
}

// isStatementStart reports whether a word begins a statement, so that
// "masquerade accept" does not read "accept" as a flag.
func isStatementStart(t string) bool {
	switch t {
	case "accept", "drop", "return", "continue", "jump", "goto", "meta", "ct", "ip", "ip6", "th",
		"fib", "numgen", "update", "add", "dnat", "snat", "masquerade", "reject":
		return true
	}
	return false
}
