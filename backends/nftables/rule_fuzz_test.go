//go:build linux

package nftables

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
)

// fuzzRule reads a rule from data: one byte picks a statement, the next
// bytes its values.
func fuzzRule(data []byte) rule {
	var r rule
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	fields := []field{fSaddr, fDaddr, fL4proto, fDport}
	keys := func() []field {
		n := 1 + int(next()%3)
		out := make([]field, n)
		for i := range out {
			out[i] = fields[next()%4]
		}
		return out
	}
	addr := func() netip.Addr {
		if next()%2 == 0 {
			return netip.AddrFrom4([4]byte{next(), next(), next(), next()})
		}
		var a [16]byte
		a[0], a[15] = 0xfd, next()
		return netip.AddrFrom16(a)
	}
	u32 := func() uint32 { return binary.BigEndian.Uint32([]byte{next(), next(), next(), next()}) }
	protos := []v1.Protocol{v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP}
	for len(data) > 0 && len(r) < 8 {
		switch next() % 18 {
		case 0:
			r = append(r, inSet("s", keys()...))
		case 1:
			r = append(r, notInSet("s", keys()...))
		case 2:
			r = append(r, vmap("m", keys()...))
		case 3:
			r = append(r, update("s", keys()...))
		case 4:
			r = append(r, addrIs(fields[next()%2], addr()))
		case 5:
			a := addr()
			r = append(r, addrNotIn(fields[next()%2], netip.PrefixFrom(a, int(next())%(a.BitLen()+1)).Masked()))
		case 6:
			r = append(r, ctNew())
		case 7:
			r = append(r, ctDNAT())
		case 8:
			r = append(r, fibLocal(fields[next()%2]))
		case 9:
			r = append(r, l4proto(protos[next()%3]))
		case 10:
			r = append(r, markAny(u32()))
		case 11:
			r = append(r, numgen(max(1, u32())))
		case 12:
			r = append(r, markOr(u32()))
		case 13:
			r = append(r, markAnd(u32()))
		case 14:
			r = append(r, dnat(netip.AddrPortFrom(addr(), uint16(u32()))))
		case 15:
			r = append(r, masquerade(), reject())
		case 16:
			r = append(r, jump("c"))
		default:
			r = append(r, goTo("c"), accept(), drop())
		}
	}
	return r
}

// FuzzRuleModel: every rule the model can hold has text and expressions,
// and every expression encodes byte for byte as google/nftables' own
// Marshal does.
func FuzzRuleModel(f *testing.F) {
	for _, tc := range nlRuleCases {
		var b bytes.Buffer
		for _, s := range tc.rule {
			b.WriteByte(byte(s.kind))
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := fuzzRule(data)
		for _, fam := range []struct {
			f       family
			nfproto byte
		}{{ipv4, unix.NFPROTO_IPV4}, {ipv6, unix.NFPROTO_IPV6}} {
			text := r.text(&fam.f)
			if len(r) > 0 && (text == "" || strings.HasPrefix(text, " ") || strings.Contains(text, "  ")) {
				t.Errorf("rule %+v: text %q", r, text)
			}
			exprs := r.appendExprs(nil, fam.nfproto)
			if len(exprs) < len(r) {
				t.Errorf("%q: %d expressions for %d statements", text, len(exprs), len(r))
			}
			for _, e := range exprs {
				if want, got, err := nlEncodings(fam.nfproto, e); err != nil || !bytes.Equal(want, got) {
					t.Errorf("%q: %T encodes differently from expr.Marshal (%v)", text, e, err)
				}
			}
		}
	})
}
