//go:build linux

package nftables

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// Shorthands for the expected expressions. nlHost is a host-order 32-bit
// value (marks, conntrack bits, fib results); nlZero4 is four zero bytes.
func nlHost(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

var nlZero4 = make([]byte, 4)

func nlLoad(reg uint32, base expr.PayloadBase, off, n uint32) *expr.Payload {
	return &expr.Payload{DestRegister: reg, Base: base, Offset: off, Len: n}
}

const (
	nlNh = expr.PayloadBaseNetworkHeader
	nlTh = expr.PayloadBaseTransportHeader
)

func nlEq(reg uint32, data ...byte) *expr.Cmp {
	return &expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: data}
}

func nlNe(reg uint32, data ...byte) *expr.Cmp {
	return &expr.Cmp{Op: expr.CmpOpNeq, Register: reg, Data: data}
}

func nlMask(m, x []byte) *expr.Bitwise {
	return &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(m)), Mask: m, Xor: x}
}

func nlVerdict(k expr.VerdictKind, chain string) *expr.Verdict {
	return &expr.Verdict{Kind: k, Chain: chain}
}

var (
	nlL4proto  = func(reg uint32) *expr.Meta { return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg} }
	nlMarkLoad = &expr.Meta{Key: expr.MetaKeyMARK, Register: 1}
	nlMarkSet  = &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}
	nlVmap     = func(name string) *expr.Lookup {
		return &expr.Lookup{SourceRegister: 1, IsDestRegSet: true, SetName: name}
	}
	nlFibLocal = func(src bool) []expr.Any {
		return []expr.Any{&expr.Fib{Register: 1, FlagSADDR: src, FlagDADDR: !src, ResultADDRTYPE: true}, nlEq(1, nlHost(2)...)}
	}
	nlFd00_10_244_2_5 = []byte{0xfd, 0, 0, 0x10, 0x02, 0x44, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 5}
	nlLoopback6       = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
)

func nlCat(parts ...any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		switch p := p.(type) {
		case expr.Any:
			out = append(out, p)
		case []expr.Any:
			out = append(out, p...)
		}
	}
	return out
}

var nlCtStateNew = []expr.Any{&expr.Ct{Key: expr.CtKeySTATE, Register: 1}, nlMask(nlHost(8), nlZero4), nlNe(1, nlZero4...)}

// nlRuleCases are every rule shape the builder writes, with the text nft
// prints for them and the expressions `nft --debug=netlink` shows.
var nlRuleCases = []struct {
	v6   bool
	rule rule
	text string
	want []expr.Any
}{
	{rule: rule{ctNew(), jump("firewall-check")}, text: "ct state new jump firewall-check",
		want: nlCat(nlCtStateNew, nlVerdict(expr.VerdictJump, "firewall-check"))},
	{rule: rule{l4proto(v1.ProtocolTCP), inSet("health-check-nodeports", fDport), accept()},
		text: "meta l4proto tcp th dport @health-check-nodeports accept", want: nlCat(
			nlL4proto(1), nlEq(1, 6), nlLoad(1, nlTh, 2, 2),
			&expr.Lookup{SourceRegister: 1, SetName: "health-check-nodeports"}, nlVerdict(expr.VerdictAccept, ""))},
	{rule: rule{jump("services")}, text: "jump services", want: nlCat(nlVerdict(expr.VerdictJump, "services"))},
	{rule: rule{goTo("svc-default/web/http/tcp-rtgfca5m")}, text: "goto svc-default/web/http/tcp-rtgfca5m",
		want: nlCat(nlVerdict(expr.VerdictGoto, "svc-default/web/http/tcp-rtgfca5m"))},
	{rule: rule{drop()}, text: "drop", want: nlCat(nlVerdict(expr.VerdictDrop, ""))},
	{rule: rule{vmap("service-ips", fDaddr, fL4proto, fDport)}, text: "ip daddr . meta l4proto . th dport vmap @service-ips",
		want: nlCat(nlLoad(1, nlNh, 16, 4), nlL4proto(unix.NFT_REG32_01), nlLoad(unix.NFT_REG32_02, nlTh, 2, 2), nlVmap("service-ips"))},
	{v6: true, rule: rule{vmap("service-ips", fDaddr, fL4proto, fDport)}, text: "ip6 daddr . meta l4proto . th dport vmap @service-ips",
		want: nlCat(nlLoad(1, nlNh, 24, 16), nlL4proto(unix.NFT_REG_2), nlLoad(unix.NFT_REG32_05, nlTh, 2, 2), nlVmap("service-ips"))},
	{rule: rule{fibLocal(fDaddr), addrNotIn(fDaddr, ipv4.Loopback), vmap("service-nodeports", fL4proto, fDport)},
		text: "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports", want: nlCat(
			nlFibLocal(false), nlLoad(1, nlNh, 16, 1), nlNe(1, 127),
			nlL4proto(1), nlLoad(unix.NFT_REG32_01, nlTh, 2, 2), nlVmap("service-nodeports"))},
	{v6: true, rule: rule{fibLocal(fDaddr), addrNotIn(fDaddr, ipv6.Loopback), inSet("nodeport-addresses", fDaddr),
		vmap("service-nodeports", fL4proto, fDport)},
		text: "fib daddr type local ip6 daddr != ::1 ip6 daddr @nodeport-addresses meta l4proto . th dport vmap @service-nodeports",
		want: nlCat(nlFibLocal(false), nlLoad(1, nlNh, 24, 16), nlNe(1, nlLoopback6...),
			nlLoad(1, nlNh, 24, 16), &expr.Lookup{SourceRegister: 1, SetName: "nodeport-addresses"},
			nlL4proto(1), nlLoad(unix.NFT_REG32_01, nlTh, 2, 2), nlVmap("service-nodeports"))},
	{rule: rule{markAny(0x4000), markAnd(0xffffbfff), masquerade()},
		text: "meta mark & 0x4000 != 0 meta mark set meta mark & 0xffffbfff masquerade fully-random", want: nlCat(
			nlMarkLoad, nlMask(nlHost(0x4000), nlZero4), nlNe(1, nlZero4...),
			nlMarkLoad, nlMask(nlHost(0xffffbfff), nlZero4), nlMarkSet, &expr.Masq{FullyRandom: true})},
	{rule: rule{ctDNAT(), inSet("hairpin", fSaddr, fDaddr), masquerade()},
		text: "ct status dnat ip saddr . ip daddr @hairpin masquerade fully-random", want: nlCat(
			&expr.Ct{Key: expr.CtKeySTATUS, Register: 1}, nlMask(nlHost(0x20), nlZero4), nlNe(1, nlZero4...),
			nlLoad(1, nlNh, 12, 4), nlLoad(unix.NFT_REG32_01, nlNh, 16, 4),
			&expr.Lookup{SourceRegister: 1, SetName: "hairpin"}, &expr.Masq{FullyRandom: true})},
	{v6: true, rule: rule{ctDNAT(), inSet("hairpin", fSaddr, fDaddr), masquerade()},
		text: "ct status dnat ip6 saddr . ip6 daddr @hairpin masquerade fully-random", want: nlCat(
			&expr.Ct{Key: expr.CtKeySTATUS, Register: 1}, nlMask(nlHost(0x20), nlZero4), nlNe(1, nlZero4...),
			nlLoad(1, nlNh, 8, 16), nlLoad(unix.NFT_REG_2, nlNh, 24, 16),
			&expr.Lookup{SourceRegister: 1, SetName: "hairpin"}, &expr.Masq{FullyRandom: true})},
	{rule: rule{markOr(0x4000)}, text: "meta mark set meta mark | 0x4000",
		want: nlCat(nlMarkLoad, nlMask(nlHost(0xffffbfff), nlHost(0x4000)), nlMarkSet)},
	{rule: rule{reject()}, text: "reject", want: nlCat(&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3})},
	{v6: true, rule: rule{reject()}, text: "reject", want: nlCat(&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 4})},
	{rule: rule{addrIs(fDaddr, netip.MustParseAddr("10.96.0.10")), notInSet("cluster-cidrs", fSaddr), jump("mark-for-masquerade")},
		text: "ip daddr 10.96.0.10 ip saddr != @cluster-cidrs jump mark-for-masquerade", want: nlCat(
			nlLoad(1, nlNh, 16, 4), nlEq(1, 10, 96, 0, 10), nlLoad(1, nlNh, 12, 4),
			&expr.Lookup{SourceRegister: 1, SetName: "cluster-cidrs", Invert: true}, nlVerdict(expr.VerdictJump, "mark-for-masquerade"))},
	{rule: rule{numgen(3), l4proto(v1.ProtocolTCP), dnat(netip.MustParseAddrPort("10.244.1.5:8080"))},
		text: "numgen random mod 3 == 0 meta l4proto tcp dnat to 10.244.1.5:8080", want: nlCat(
			&expr.Numgen{Register: 1, Modulus: 3, Type: unix.NFT_NG_RANDOM}, nlEq(1, nlZero4...),
			nlL4proto(1), nlEq(1, 6),
			&expr.Immediate{Register: 1, Data: []byte{10, 244, 1, 5}}, &expr.Immediate{Register: 2, Data: []byte{0x1f, 0x90}},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})},
	{rule: rule{inSet("aff-p4yjc6fi-10.244.1.15-8443", fSaddr), update("aff-p4yjc6fi-10.244.1.15-8443", fSaddr), l4proto(v1.ProtocolUDP),
		dnat(netip.MustParseAddrPort("10.244.1.15:8443"))},
		text: "ip saddr @aff-p4yjc6fi-10.244.1.15-8443 update @aff-p4yjc6fi-10.244.1.15-8443 { ip saddr } meta l4proto udp dnat to 10.244.1.15:8443",
		want: nlCat(nlLoad(1, nlNh, 12, 4), &expr.Lookup{SourceRegister: 1, SetName: "aff-p4yjc6fi-10.244.1.15-8443"},
			nlLoad(1, nlNh, 12, 4), &expr.Dynset{SrcRegKey: 1, SetName: "aff-p4yjc6fi-10.244.1.15-8443", Operation: unix.NFT_DYNSET_OP_UPDATE},
			nlL4proto(1), nlEq(1, 17),
			&expr.Immediate{Register: 1, Data: []byte{10, 244, 1, 15}}, &expr.Immediate{Register: 2, Data: []byte{0x20, 0xfb}},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})},
	{v6: true, rule: rule{l4proto(v1.ProtocolSCTP), dnat(netip.MustParseAddrPort("[fd00:10:244:2::5]:8080"))},
		text: "meta l4proto sctp dnat to [fd00:10:244:2::5]:8080", want: nlCat(
			nlL4proto(1), nlEq(1, 132),
			&expr.Immediate{Register: 1, Data: nlFd00_10_244_2_5}, &expr.Immediate{Register: 2, Data: []byte{0x1f, 0x90}},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV6, RegAddrMin: 1, RegProtoMin: 2, Specified: true})},
	{rule: rule{notInSet("fwsrc-shop/front/https/tcp-gr4liyst", fSaddr), drop()},
		text: "ip saddr != @fwsrc-shop/front/https/tcp-gr4liyst drop", want: nlCat(
			nlLoad(1, nlNh, 12, 4), &expr.Lookup{SourceRegister: 1, SetName: "fwsrc-shop/front/https/tcp-gr4liyst", Invert: true},
			nlVerdict(expr.VerdictDrop, ""))},
	{rule: rule{fibLocal(fSaddr), jump("mark-for-masquerade")}, text: "fib saddr type local jump mark-for-masquerade",
		want: nlCat(nlFibLocal(true), nlVerdict(expr.VerdictJump, "mark-for-masquerade"))},
	// Prefixes off a byte boundary are masked; on one, only their bytes
	// are loaded.
	{rule: rule{addrNotIn(fDaddr, netip.MustParsePrefix("10.16.0.0/12")), accept()}, text: "ip daddr != 10.16.0.0/12 accept", want: nlCat(
		nlLoad(1, nlNh, 16, 4), nlMask([]byte{0xff, 0xf0, 0, 0}, nlZero4), nlNe(1, 10, 16, 0, 0), nlVerdict(expr.VerdictAccept, ""))},
	{rule: rule{addrNotIn(fSaddr, netip.MustParsePrefix("0.0.0.0/0")), accept()}, text: "ip saddr != 0.0.0.0/0 accept", want: nlCat(
		nlLoad(1, nlNh, 12, 4), nlMask(nlZero4, nlZero4), nlNe(1, 0, 0, 0, 0), nlVerdict(expr.VerdictAccept, ""))},
	{v6: true, rule: rule{addrNotIn(fDaddr, netip.MustParsePrefix("fd00::/64")), drop()}, text: "ip6 daddr != fd00::/64 drop", want: nlCat(
		nlLoad(1, nlNh, 24, 8), nlNe(1, 0xfd, 0, 0, 0, 0, 0, 0, 0), nlVerdict(expr.VerdictDrop, ""))},
}

// TestRuleModel checks the text and the expressions of every rule shape
// the builder writes against what nft prints and generates for the same
// rule; TestNetlinkRoundTrip compares the kernel's bytecode for whole
// tables.
func TestRuleModel(t *testing.T) {
	for _, tc := range nlRuleCases {
		fam, nfproto := ipv4, byte(unix.NFPROTO_IPV4)
		if tc.v6 {
			fam, nfproto = ipv6, unix.NFPROTO_IPV6
		}
		if got := tc.rule.text(&fam); got != tc.text {
			t.Errorf("text = %q, want %q", got, tc.text)
		}
		got := tc.rule.appendExprs(nil, nfproto)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q: expressions (-want +got):\n%s", tc.text, diff)
		}
		for _, e := range got {
			if _, err := expr.Marshal(nfproto, e); err != nil {
				t.Errorf("%q: %T does not marshal: %v", tc.text, e, err)
			}
		}
	}
}

// nlEncodings returns e encoded by expr.Marshal (wrapped in its list
// element) and by appendExpr.
func nlEncodings(fam byte, e expr.Any) (marshal, appended []byte, err error) {
	data, err := expr.Marshal(fam, e)
	if err != nil {
		return nil, nil, err
	}
	var m, a nlBuf
	n := m.nest(unix.NFTA_LIST_ELEM)
	m.b = append(m.b, data...)
	m.unnest(n)
	err = a.appendExpr(fam, e)
	return m.b, a.b, err
}

// TestNetlinkAppendExprMatchesMarshal: the direct encoding is byte for byte
// google/nftables' own.
func TestNetlinkAppendExprMatchesMarshal(t *testing.T) {
	extra := []expr.Any{
		&expr.Masq{Random: true, Persistent: true}, &expr.Masq{ToPorts: true, RegProtoMin: 1},
		&expr.Lookup{SourceRegister: 9, SetName: "s", SetID: 7},
		&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 2, RegProtoMin: 3,
			RegProtoMax: 4, Random: true, FullyRandom: true, Persistent: true, Prefix: true},
		&expr.Numgen{Register: 9, Modulus: 7, Type: unix.NFT_NG_INCREMENTAL, Offset: 3},
		&expr.Fib{Register: 1, FlagSADDR: true, FlagDADDR: true, FlagMARK: true, FlagIIF: true, FlagOIF: true,
			FlagPRESENT: true, ResultOIF: true, ResultOIFNAME: true, ResultADDRTYPE: true},
		&expr.Fib{Register: 1},
		&expr.Dynset{SrcRegKey: 1, SrcRegData: 2, SetName: "s", SetID: 3, Operation: unix.NFT_DYNSET_OP_ADD, Timeout: 1500 * time.Millisecond, Invert: true},
		&expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: 1}, &expr.Ct{Key: expr.CtKeySRC, Register: 1, Direction: 1},
		&expr.Counter{}, &expr.Reject{Type: 1, Code: 10},
		&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: nlNh, Offset: 8, Len: 1, CsumType: expr.CsumTypeInet, CsumOffset: 10},
	}
	for fam, exprs := range map[byte][]expr.Any{unix.NFPROTO_IPV4: extra, unix.NFPROTO_IPV6: nil} {
		for _, tc := range nlRuleCases {
			if tc.v6 == (fam == unix.NFPROTO_IPV6) {
				exprs = append(exprs, tc.want...)
				for _, e := range tc.want {
					// The model's shapes are encoded here, not by Marshal.
					if b := (nlBuf{}); !b.appendKnownExpr(e) {
						t.Errorf("%s: %T %+v is not encoded directly", tc.text, e, e)
					}
				}
			}
		}
		for _, e := range exprs {
			want, got, err := nlEncodings(fam, e)
			if err != nil || !bytes.Equal(want, got) {
				t.Errorf("%T %+v: appendExpr gives\n%x\nexpr.Marshal\n%x (%v)", e, e, got, want, err)
			}
		}
	}
}

func TestParseVerdict(t *testing.T) {
	for _, v := range []string{"", "goto", "goto \"\"", "jump \"", "jump a b", "reject", "accept accept", "ip daddr 1.2.3.4"} {
		if _, err := parseVerdict(v); err == nil {
			t.Errorf("parseVerdict(%q) succeeded", v)
		}
	}
	for text, want := range map[string]*expr.Verdict{"drop": {Kind: expr.VerdictDrop}, "goto \"c\"": {Kind: expr.VerdictGoto, Chain: "c"},
		"jump services": {Kind: expr.VerdictJump, Chain: "services"}} {
		if got, err := parseVerdict(text); err != nil || *got != *want {
			t.Errorf("parseVerdict(%q) = %v, %v; want %v", text, got, err, want)
		}
	}
}

// FuzzNetlinkElements: no element key or value text makes the batch writer
// panic; a key it encodes for a shared container lists back (as the
// kernel's dump is decoded) as a key that encodes to the same bytes; an
// interval it accepts is not empty; and what it accepts as a verdict reads
// back as one.
func FuzzNetlinkElements(f *testing.F) {
	for _, s := range []string{"", "goto", "10.0.0.1 . tcp . 80", "tcp . 80", "10.0.0.0/8", "fd00::1 . fd00::1", "drop", "goto x"} {
		f.Add(s)
	}
	var fields [2][numContainers][]setField // by family, the containers' keys
	for i, fam := range []family{ipv4, ipv6} {
		for ct := range numContainers {
			fields[i][ct] = containerFields(f, fam, ct)
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		for i, fam := range []family{ipv4, ipv6} {
			var o ops
			addrs := &set{name: "s", key: keyType{addrField(fam)}, flags: flagInterval}
			svc := &set{name: "m", isMap: true, key: keyType{addrField(fam), fProto, fService}}
			o.setOp(opAdd, addrs)
			o.setOp(opAdd, svc)
			o.elem(opAdd, svc, text, text)
			o.elem(opAdd, addrs, text, "")
			_, _ = newNetlinkWriter().translate(fam, "t", o)

			for c, fields := range fields[i] {
				ct := container(c)
				b, err := encodeKey(text, fields)
				if err != nil {
					continue
				}
				key, _, err := decodeElement(fam, ct, gnft.SetElement{Key: b, Val: verdictBytes(t, 0, "")})
				if err != nil {
					t.Errorf("%s: %q encodes to %x, which does not decode: %v", ct.name(), text, b, err)
				} else if again, err := encodeKey(key, fields); err != nil || !bytes.Equal(again, b) {
					t.Errorf("%s: %q encodes to %x, listed as %q, which encodes to %x (%v)", ct.name(), text, b, key, again, err)
				}
			}
			if r, err := encodeRange(text, addrField(fam)); err == nil && r.end != nil && bytes.Compare(r.start, r.end) >= 0 {
				t.Errorf("interval %q: start %x is not before end %x", text, r.start, r.end)
			}
		}
		if v, err := parseVerdict(text); err == nil {
			f := strings.Fields(text)
			if k, ok := verdictKinds[f[0]]; !ok || k != v.Kind || (v.Chain != "") != (len(f) == 2) {
				t.Errorf("parseVerdict(%q) = %+v", text, v)
			}
		}
	})
}

// TestNetlinkEncodeElements checks element keys against what nft sends (see
// `nft --debug=netlink -f testdata/*.golden`).
func TestNetlinkEncodeElements(t *testing.T) {
	keys := []struct {
		key    string
		fields []setField
		want   []byte
	}{
		{"10.96.0.15 . tcp . 443", []setField{fAddr4, fProto, fService}, []byte{10, 96, 0, 15, 6, 0, 0, 0, 1, 187, 0, 0}},
		{"tcp . 30080", []setField{fProto, fService}, []byte{6, 0, 0, 0, 0x75, 0x80, 0, 0}},
		{"sctp . 80", []setField{fProto, fService}, []byte{132, 0, 0, 0, 0, 80, 0, 0}},
		{"32000", []setField{fService}, []byte{0x7d, 0x00}},
		{"10.244.1.15 . 10.244.1.15", []setField{fAddr4, fAddr4}, []byte{10, 244, 1, 15, 10, 244, 1, 15}},
		{"fd00:10:244:2::5 . udp . 53", []setField{fAddr6, fProto, fService}, append(append([]byte{}, nlFd00_10_244_2_5...), 17, 0, 0, 0, 0, 53, 0, 0)},
	}
	for _, k := range keys {
		got, err := encodeKey(k.key, k.fields)
		if err != nil || !bytes.Equal(got, k.want) {
			t.Errorf("encodeKey(%q) = %x, %v; want %x", k.key, got, err, k.want)
		}
	}
	svc := []setField{fAddr4, fProto, fService}
	for _, bad := range []string{"10.1.2 . tcp . 80", "10.1.2.3 . tcp . 70000", "10.1.2.3 . bogus . 80",
		"tcp . 80", "fd00::1 . tcp . 80", "10.1.2.3 . tcp . 80 . 1"} {
		if got, err := encodeKey(bad, svc); err == nil {
			t.Errorf("encodeKey(%q) = %x, want an error", bad, got)
		}
	}

	r, err := encodeRange("10.244.0.0/16", fAddr4)
	if err != nil || !bytes.Equal(r.start, []byte{10, 244, 0, 0}) || !bytes.Equal(r.end, []byte{10, 245, 0, 0}) {
		t.Errorf("10.244.0.0/16 = %x-%x, %v", r.start, r.end, err)
	}
	if r, _ := encodeRange("255.255.255.0/24", fAddr4); r.end != nil {
		t.Errorf("255.255.255.0/24 ends at %x, want open", r.end)
	}
	if r, _ := encodeRange("203.0.113.7", fAddr4); !bytes.Equal(r.end, []byte{203, 0, 113, 8}) {
		t.Errorf("203.0.113.7 ends at %x", r.end)
	}
	if r, _ := encodeRange("1000-2000", fService); !bytes.Equal(r.start, []byte{0x03, 0xe8}) || !bytes.Equal(r.end, []byte{0x07, 0xd1}) {
		t.Errorf("1000-2000 = %x-%x", r.start, r.end)
	}
	for _, bad := range []string{"10.0.0.0/33", "fd00::/8", "10.0.0.9-10.0.0.1", "x"} {
		if _, err := encodeRange(bad, fAddr4); err == nil {
			t.Errorf("encodeRange(%q) succeeded", bad)
		}
	}

	var rs []keyRange
	for _, p := range []string{"10.0.1.0/24", "10.0.0.0/24", "10.0.0.0/16", "192.168.0.0/24", "192.168.1.0/24", "192.168.0.0/24"} {
		r, _ := encodeRange(p, fAddr4)
		rs = append(rs, r)
	}
	var got []string
	for _, r := range mergeRanges(rs) {
		got = append(got, netip.AddrFrom4([4]byte(r.start)).String()+"-"+netip.AddrFrom4([4]byte(r.end)).String())
	}
	// Overlaps merge (into the enclosing /16); adjacent /24s stay apart.
	if want := []string{"10.0.0.0-10.1.0.0", "192.168.0.0-192.168.1.0", "192.168.1.0-192.168.2.0"}; !cmp.Equal(got, want) {
		t.Errorf("merged %v, want %v", got, want)
	}
}

// TestNetlinkErrorNamesElement: the kernel's offset of the failing
// attribute picks the element out of a message of several.
func TestNetlinkErrorNamesElement(t *testing.T) {
	var o ops
	m := &set{name: "m", isMap: true, key: keyType{fProto, fService}}
	for _, k := range []string{"tcp . 80", "tcp . 81", "tcp . 82"} {
		o.elem(opDelete, m, k, "")
	}
	b, err := newNetlinkWriter().translate(ipv4, "t", o)
	if err != nil {
		t.Fatal(err)
	}
	info := b.infos[1]
	if len(info.elems) != 3 {
		t.Fatalf("%d elements located in the message, want 3", len(info.elems))
	}
	err = b.kernelError(o, []kernelError{{seq: 2, errno: unix.ENOENT, offset: info.elems[1].off + 4}}, false)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "delete element tcp . 81 from map m") ||
		!notFound(err) {
		t.Errorf("got %v", err)
	}
}

func TestNetlinkTranslateErrors(t *testing.T) {
	svc := &set{name: "m", isMap: true, key: keyType{fAddr4, fProto, fService}}
	addrs := &set{name: "s", key: keyType{fAddr4}}
	ranges := &set{name: "r", key: keyType{fAddr4}, flags: flagInterval}
	bad := []op{
		{verb: opAdd, kind: oElem, set: svc, key: "10.0.0.1 . tcp . 80"}, // no verdict
		{verb: opAdd, kind: oElem, set: svc, key: "10.0.0.1 . tcp . 80", value: "goto"},
		{verb: opAdd, kind: oElem, set: svc, key: "10.0.0.1 . tcp", value: "drop"},
		{verb: opDelete, kind: oElem, set: svc, key: "fd00::1 . tcp . 80"},
		{verb: opAdd, kind: oElem, set: addrs, key: "10.0.0.1", value: "accept"},
		{verb: opAdd, kind: oElem, set: addrs, key: "10.0.0.0/8"},
		{verb: opAdd, kind: oElem, set: ranges, key: "10.0.0.0/8", value: "accept"},
		{verb: opAdd, kind: oElem, set: ranges, key: "10.0.0.9-10.0.0.1"},
		{verb: opFlush, kind: oElem, set: addrs, key: "10.0.0.1"},
		{verb: opFlush, kind: oTable},
	}
	for _, x := range bad {
		if _, err := newNetlinkWriter().translate(ipv4, "t", ops{x}); err == nil {
			t.Errorf("%s: no error", describeOp(x, 0, &ipv4))
		} else if !strings.Contains(err.Error(), "table ip t: "+describeOp(x, 0, &ipv4)) {
			t.Errorf("error %q does not name the table and the operation", err)
		} else {
			t.Log(err)
		}
	}
}

// BenchmarkNetlinkTranslate measures turning a cold sync's batch (1,000
// service ports with 10 endpoints each) into netlink messages.
func BenchmarkNetlinkTranslate(b *testing.B) {
	snap := nlClusterSnapshot(b, 1000, 10)
	rs := build(snap, Spec{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}, Shards: 1}.withDefaults())
	var o ops
	for _, p := range rs.ports {
		for i := range p.chains {
			o.addChain(&p.chains[i])
		}
	}
	rules := 0
	for _, p := range rs.ports {
		for i := range p.chains {
			o.rules(&p.chains[i])
			rules += p.chains[i].ruleCount()
		}
	}
	forEachElement(rs.ports, func(e element) { o.elem(opAdd, &rs.containers[e.in], e.key, e.value) })
	b.ReportAllocs()
	var size, messages int
	for b.Loop() {
		bt, err := newNetlinkWriter().translate(rs.fam, "lbkit", o)
		if err != nil {
			b.Fatal(err)
		}
		size, messages = len(bt.b), len(bt.infos)-2
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(messages), "ns/message")
	b.ReportMetric(float64(messages), "messages")
	b.ReportMetric(float64(rules), "rules")
	b.ReportMetric(float64(size), "bytes")
}

func nlClusterSnapshot(tb testing.TB, services, endpoints int) *servicemap.Snapshot {
	tb.Helper()
	svcs, slices := servicemaptest.Cluster(services, endpoints)
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a", IPFamily: v1.IPv4Protocol})
	for _, s := range svcs {
		tr.OnServiceAdd(s)
	}
	for _, es := range slices {
		tr.OnEndpointSliceAdd(es)
	}
	return tr.Snapshot()
}
