//go:build linux

package nftables

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// parseRule turns the text of one rule, as the builder writes it, into the
// expressions nft would generate for it (compare `nft --debug=netlink`).
// It knows the statements the builder uses and a few close relatives, not
// nft's whole grammar: anything else is an error, so that a rule is never
// loaded with a meaning other than its text's. fam is unix.NFPROTO_IPV4 or
// NFPROTO_IPV6, the family of the table.
func parseRule(fam byte, text string) ([]expr.Any, error) {
	p := ruleParser{fam: fam, toks: strings.Fields(text)}
	if len(p.toks) == 0 {
		return nil, fmt.Errorf("empty rule")
	}
	p.out = make([]expr.Any, 0, 2*len(p.toks)/3+2)
	for p.pos < len(p.toks) {
		if p.final {
			return nil, p.errorf("nothing may follow a verdict")
		}
		if err := p.statement(); err != nil {
			return nil, err // the caller names the rule; errorf says where
		}
	}
	return p.out, nil
}

type ruleParser struct {
	fam   byte
	toks  []string
	pos   int
	out   []expr.Any
	final bool // a verdict (or vmap, reject) ended the rule
}

func (p *ruleParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *ruleParser) next() string {
	t := p.peek()
	if t != "" {
		p.pos++
	}
	return t
}

// expect consumes tok or fails.
func (p *ruleParser) expect(tok string) error {
	if p.next() != tok {
		return p.errorf("expected %q", tok)
	}
	return nil
}

func (p *ruleParser) errorf(format string, args ...any) error {
	at := "at end"
	if i := min(p.pos, len(p.toks)) - 1; i >= 0 {
		at = fmt.Sprintf("after %q", strings.Join(p.toks[max(0, i-2):i+1], " "))
	}
	return fmt.Errorf(format+" ("+at+")", args...)
}

func (p *ruleParser) emit(e ...expr.Any) { p.out = append(p.out, e...) }

func (p *ruleParser) statement() error {
	switch p.peek() {
	case "accept", "drop", "return", "continue", "jump", "goto":
		v, err := p.verdict()
		if err != nil {
			return err
		}
		p.emit(v)
		p.final = true
		return nil
	case "update", "add":
		return p.dynset()
	case "dnat", "snat":
		return p.nat()
	case "masquerade":
		return p.masquerade()
	case "reject":
		p.pos++
		if p.peek() == "with" {
			return p.errorf("reject with a type is not supported")
		}
		// nft's default: ICMP (v6) port unreachable.
		code := uint8(3)
		if p.fam == unix.NFPROTO_IPV6 {
			code = 4
		}
		p.emit(&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: code})
		p.final = true
		return nil
	case "meta":
		if p.pos+2 < len(p.toks) && p.toks[p.pos+1] == "mark" && p.toks[p.pos+2] == "set" {
			return p.markSet()
		}
	}
	return p.match()
}

// verdict parses accept, drop, return, continue, jump CHAIN or goto CHAIN.
func (p *ruleParser) verdict() (*expr.Verdict, error) {
	switch t := p.next(); t {
	case "accept":
		return &expr.Verdict{Kind: expr.VerdictAccept}, nil
	case "drop":
		return &expr.Verdict{Kind: expr.VerdictDrop}, nil
	case "return":
		return &expr.Verdict{Kind: expr.VerdictReturn}, nil
	case "continue":
		return &expr.Verdict{Kind: expr.VerdictContinue}, nil
	case "jump", "goto":
		name := unquote(p.next())
		if name == "" {
			return nil, p.errorf("%s needs a chain name", t)
		}
		kind := expr.VerdictJump
		if t == "goto" {
			kind = expr.VerdictGoto
		}
		return &expr.Verdict{Kind: kind, Chain: name}, nil
	default:
		return nil, p.errorf("unknown verdict %q", t)
	}
}

// parseVerdict parses the value of a verdict map element.
func parseVerdict(text string) (*expr.Verdict, error) {
	p := ruleParser{toks: strings.Fields(text)}
	v, err := p.verdict()
	if err == nil && p.pos != len(p.toks) {
		err = p.errorf("unexpected text after the verdict")
	}
	if err != nil {
		return nil, fmt.Errorf("verdict %q: %w", text, err)
	}
	return v, nil
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// valueKind says how a constant compared with a selector is written and
// encoded. Packet fields are in network byte order; what the kernel
// computes (marks, conntrack bits, fib results, numgen) is in host order.
type valueKind uint8

const (
	vAddr4 valueKind = iota + 1
	vAddr6
	vPort    // inet_service: 2 bytes, big endian
	vProto   // inet_proto: 1 byte
	vU32     // host-order integer: meta mark, numgen
	vCtState // host-order bit mask with names
	vCtStatus
	vFibType // host-order address type
)

type selKind uint8

const (
	selPayload selKind = iota + 1
	selMeta
	selCt
	selFib
	selNumgen
)

// selector is something a rule loads into a register: a packet field, meta
// or conntrack data, a fib lookup or a random number. It is parsed first
// and loaded once the rest of the match says how (a prefix loads fewer
// bytes).
type selector struct {
	kind   selKind
	value  valueKind
	size   uint32 // bytes
	base   expr.PayloadBase
	offset uint32
	meta   expr.MetaKey
	ct     expr.CtKey
	fibSrc bool
	mod    uint32
}

func (s *selector) load(reg, size uint32) expr.Any {
	switch s.kind {
	case selPayload:
		return &expr.Payload{DestRegister: reg, Base: s.base, Offset: s.offset, Len: size}
	case selMeta:
		return &expr.Meta{Key: s.meta, Register: reg}
	case selCt:
		return &expr.Ct{Key: s.ct, Register: reg}
	case selFib:
		return &expr.Fib{Register: reg, FlagSADDR: s.fibSrc, FlagDADDR: !s.fibSrc, ResultADDRTYPE: true}
	default:
		return &expr.Numgen{Register: reg, Modulus: s.mod, Type: unix.NFT_NG_RANDOM}
	}
}

func (p *ruleParser) selector() (selector, error) {
	switch t := p.next(); t {
	case "ip", "ip6":
		if (t == "ip6") != (p.fam == unix.NFPROTO_IPV6) {
			return selector{}, p.errorf("%s does not match the table's family", t)
		}
		s := selector{kind: selPayload, base: expr.PayloadBaseNetworkHeader, value: vAddr4, size: 4}
		src, dst := uint32(12), uint32(16)
		if t == "ip6" {
			s.value, s.size, src, dst = vAddr6, 16, 8, 24
		}
		switch p.next() {
		case "saddr":
			s.offset = src
		case "daddr":
			s.offset = dst
		default:
			return selector{}, p.errorf("expected saddr or daddr")
		}
		return s, nil
	case "th":
		s := selector{kind: selPayload, base: expr.PayloadBaseTransportHeader, value: vPort, size: 2}
		switch p.next() {
		case "sport":
		case "dport":
			s.offset = 2
		default:
			return selector{}, p.errorf("expected sport or dport")
		}
		return s, nil
	case "meta":
		switch p.next() {
		case "l4proto":
			return selector{kind: selMeta, meta: expr.MetaKeyL4PROTO, value: vProto, size: 1}, nil
		case "mark":
			return selector{kind: selMeta, meta: expr.MetaKeyMARK, value: vU32, size: 4}, nil
		}
		return selector{}, p.errorf("unsupported meta key")
	case "ct":
		switch p.next() {
		case "state":
			return selector{kind: selCt, ct: expr.CtKeySTATE, value: vCtState, size: 4}, nil
		case "status":
			return selector{kind: selCt, ct: expr.CtKeySTATUS, value: vCtStatus, size: 4}, nil
		}
		return selector{}, p.errorf("unsupported ct key")
	case "fib":
		s := selector{kind: selFib, value: vFibType, size: 4}
		switch p.next() {
		case "saddr":
			s.fibSrc = true
		case "daddr":
		default:
			return selector{}, p.errorf("expected fib saddr or daddr")
		}
		if err := p.expect("type"); err != nil {
			return selector{}, err
		}
		return s, nil
	case "numgen":
		if err := p.expect("random"); err != nil {
			return selector{}, err
		}
		if err := p.expect("mod"); err != nil {
			return selector{}, err
		}
		mod, err := strconv.ParseUint(p.next(), 0, 32)
		if err != nil || mod == 0 {
			return selector{}, p.errorf("bad numgen modulus")
		}
		return selector{kind: selNumgen, mod: uint32(mod), value: vU32, size: 4}, nil
	default:
		return selector{}, p.errorf("unknown expression %q", t)
	}
}

// match parses SELECTOR [. SELECTOR]... followed by a set lookup, a vmap,
// or (one selector) an optional mask, operator and value.
func (p *ruleParser) match() error {
	s, err := p.selector()
	if err != nil {
		return err
	}
	if p.peek() == "." {
		sels := []selector{s}
		for p.peek() == "." {
			p.pos++
			s, err := p.selector()
			if err != nil {
				return err
			}
			sels = append(sels, s)
		}
		if err := p.loadConcat(sels); err != nil {
			return err
		}
		return p.lookup()
	}

	switch t := p.peek(); {
	case t == "vmap" || strings.HasPrefix(t, "@"):
		p.emit(s.load(1, s.size))
		return p.lookup()
	case t == "!=" && strings.HasPrefix(p.peekAt(1), "@"):
		p.emit(s.load(1, s.size))
		return p.lookup()
	case t == "&":
		p.pos++
		mask, err := p.number(s.value)
		if err != nil {
			return err
		}
		op, err := p.operator()
		if err != nil {
			return err
		}
		v, err := p.number(s.value)
		if err != nil {
			return err
		}
		p.emit(s.load(1, s.size),
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: s.size, Mask: mask, Xor: make([]byte, s.size)},
			&expr.Cmp{Op: op, Register: 1, Data: v})
		return nil
	}

	explicitEq := p.peek() == "=="
	op, err := p.operator()
	if err != nil {
		return err
	}
	switch s.value {
	case vAddr4, vAddr6:
		return p.addressMatch(&s, op)
	case vCtState, vCtStatus:
		// A flag test, as nft makes of a bit mask compared implicitly:
		// (x & bits) != 0, or == 0 for "!=".
		if explicitEq {
			return p.errorf("== on a bit mask is not supported")
		}
		bits, err := p.number(s.value)
		if err != nil {
			return err
		}
		test := expr.CmpOpNeq
		if op == expr.CmpOpNeq {
			test = expr.CmpOpEq
		}
		p.emit(s.load(1, s.size),
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: s.size, Mask: bits, Xor: make([]byte, s.size)},
			&expr.Cmp{Op: test, Register: 1, Data: make([]byte, s.size)})
		return nil
	default:
		v, err := p.number(s.value)
		if err != nil {
			return err
		}
		p.emit(s.load(1, s.size), &expr.Cmp{Op: op, Register: 1, Data: v})
		return nil
	}
}

func (p *ruleParser) peekAt(n int) string {
	if p.pos+n < len(p.toks) {
		return p.toks[p.pos+n]
	}
	return ""
}

// operator consumes == or != if present; a value alone means ==.
func (p *ruleParser) operator() (expr.CmpOp, error) {
	switch p.peek() {
	case "==":
		p.pos++
	case "!=":
		p.pos++
		return expr.CmpOpNeq, nil
	case "<", ">", "<=", ">=":
		return 0, p.errorf("ordering operators are not supported")
	}
	return expr.CmpOpEq, nil
}

// loadConcat loads the selectors of a concatenation one after the other,
// each in as many 32-bit registers as it needs, as nft does. nft names a
// register by its 16-byte number (NFT_REG_1...) when the field starts on a
// 16-byte boundary and by its 32-bit number (NFT_REG32_00...) otherwise.
func (p *ruleParser) loadConcat(sels []selector) error {
	words := uint32(0)
	for i := range sels {
		if words >= 16 {
			return p.errorf("concatenation longer than the registers")
		}
		p.emit(sels[i].load(concatRegister(words), sels[i].size))
		words += (sels[i].size + 3) / 4
	}
	if words > 16 {
		return p.errorf("concatenation longer than the registers")
	}
	return nil
}

func concatRegister(words uint32) uint32 {
	if words%4 == 0 {
		return unix.NFT_REG_1 + words/4
	}
	return unix.NFT_REG32_00 + words
}

// lookup parses [!=] @SET or vmap @MAP, the key being in register 1.
func (p *ruleParser) lookup() error {
	l := &expr.Lookup{SourceRegister: 1}
	switch p.peek() {
	case "vmap":
		p.pos++
		l.IsDestRegSet = true // destination: the verdict register
		p.final = true
	case "!=":
		p.pos++
		l.Invert = true
	}
	name, ok := strings.CutPrefix(p.next(), "@")
	if !ok || name == "" {
		return p.errorf("expected @set")
	}
	l.SetName = unquote(name)
	p.emit(l)
	return nil
}

// addressMatch compares an address field with an address or prefix. Like
// nft, a prefix on a byte boundary loads only its bytes; another one loads
// the address and masks it.
func (p *ruleParser) addressMatch(s *selector, op expr.CmpOp) error {
	t := p.next()
	var pfx netip.Prefix
	var err error
	if strings.Contains(t, "/") {
		pfx, err = netip.ParsePrefix(t)
	} else {
		var a netip.Addr
		if a, err = netip.ParseAddr(t); err == nil {
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
	}
	if err != nil || pfx.Addr().Zone() != "" {
		return p.errorf("bad address %q", t)
	}
	if pfx.Addr().Is6() != (s.value == vAddr6) {
		return p.errorf("%q is not of the field's family", t)
	}
	pfx = pfx.Masked()
	addr := pfx.Addr().AsSlice()
	bits := pfx.Bits()
	switch {
	case bits == 8*len(addr):
		p.emit(s.load(1, s.size), &expr.Cmp{Op: op, Register: 1, Data: addr})
	case bits > 0 && bits%8 == 0:
		p.emit(s.load(1, uint32(bits/8)), &expr.Cmp{Op: op, Register: 1, Data: addr[:bits/8]})
	default:
		mask := netip.PrefixFrom(netip.IPv6Unspecified(), bits)
		if len(addr) == 4 {
			mask = netip.PrefixFrom(netip.IPv4Unspecified(), bits)
		}
		p.emit(s.load(1, s.size),
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: s.size, Mask: prefixMask(mask), Xor: make([]byte, s.size)},
			&expr.Cmp{Op: op, Register: 1, Data: addr})
	}
	return nil
}

// prefixMask returns the network mask of p's length, p.Addr() long.
func prefixMask(p netip.Prefix) []byte {
	m := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}
