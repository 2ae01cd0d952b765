//go:build linux

package nftables

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The encoding of sets and their elements, as nft writes them.

func (f setField) datatype() gnft.SetDatatype {
	switch f {
	case fAddr4:
		return gnft.TypeIPAddr
	case fAddr6:
		return gnft.TypeIP6Addr
	case fProto:
		return gnft.TypeInetProto
	default:
		return gnft.TypeInetService
	}
}

// byteOrder is what nft records in a set's user data for a field
// (BYTEORDER_BIG_ENDIAN is 2; a one-byte protocol has none).
func (f setField) byteOrder() uint32 {
	if f == fProto {
		return 0
	}
	return 2
}

// nlFlags returns the set's NFT_SET_* flags.
func (s *set) nlFlags() uint32 {
	var f uint32
	if s.isMap {
		f |= unix.NFT_SET_MAP
	}
	if s.flags&flagInterval != 0 {
		f |= unix.NFT_SET_INTERVAL
	}
	if s.flags&flagDynamic != 0 {
		f |= unix.NFT_SET_EVAL
	}
	if s.flags&flagTimeout != 0 || s.timeout > 0 { // as nft: a default timeout makes a timeout set
		f |= unix.NFT_SET_TIMEOUT
	}
	return f
}

// nlKeyType returns the key's type number and length as nft declares
// them: a concatenation packs its fields' type numbers and pads each field
// to 4 bytes.
func (s *set) nlKeyType() (magic, length uint32) {
	fields := s.key.fields()
	if len(fields) == 1 {
		t := fields[0].datatype()
		return t.GetNFTMagic(), t.Bytes
	}
	var types [len(keyType{})]gnft.SetDatatype
	for i, f := range fields {
		types[i] = f.datatype()
	}
	t, _ := gnft.ConcatSetType(types[:len(fields)]...) // at most three fields
	return t.GetNFTMagic(), t.Bytes
}

// userData is the set's user data as nft writes it: key (and data) byte
// order, which nft reads back when it lists the set.
func (s *set) userData() []byte {
	const (
		udKeyByteOrder  = 0
		udDataByteOrder = 1
		udDataInterval  = 6
	)
	keyOrder := uint32(0)
	if s.key[1] == 0 { // not a concatenation
		keyOrder = s.key[0].byteOrder()
	}
	ud := appendUdataU32(nil, udKeyByteOrder, keyOrder)
	if s.isMap { // a verdict has no byte order
		ud = appendUdataU32(ud, udDataByteOrder, 0)
		ud = appendUdataU32(ud, udDataInterval, 0)
	}
	return ud
}

// appendUdataU32 appends one libnftnl user-data item: type, length, value in
// host order.
func appendUdataU32(b []byte, typ byte, v uint32) []byte {
	return binary.NativeEndian.AppendUint32(append(b, typ, 4), v)
}

// elemOpenUdata marks the start of an interval that runs to the end of the
// key space (it has no end element), as nft does so that it lists it back.
var elemOpenUdata = appendUdataU32(nil, 1, 1) // NFTNL_UDATA_SET_ELEM_FLAGS: NFTNL_SET_ELEM_F_INTERVAL_OPEN

// encodeField appends the value of one field. With pad (a concatenation)
// the field takes a multiple of 4 bytes.
func encodeField(dst []byte, f setField, text string, pad bool) ([]byte, error) {
	start := len(dst)
	switch f {
	case fAddr4, fAddr6:
		a, err := netip.ParseAddr(text)
		if err != nil || a.Zone() != "" || a.Is4() != (f == fAddr4) {
			return nil, fmt.Errorf("bad %s %q", f.datatype().Name, text)
		}
		dst = append(dst, a.AsSlice()...)
	case fProto:
		n, ok := protoNumbers[text]
		if !ok {
			v, err := strconv.ParseUint(text, 10, 8)
			if err != nil {
				return nil, fmt.Errorf("bad protocol %q", text)
			}
			n = byte(v)
		}
		dst = append(dst, n)
	case fService:
		v, err := strconv.ParseUint(text, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("bad port %q", text)
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(v))
	default:
		return nil, fmt.Errorf("unknown field type")
	}
	for pad && (len(dst)-start)%4 != 0 {
		dst = append(dst, 0)
	}
	return dst, nil
}

// encodeKey encodes a key that is not an interval.
func encodeKey(text string, fields []setField) ([]byte, error) {
	parts := strings.Split(text, " . ")
	if len(parts) != len(fields) {
		return nil, fmt.Errorf("key %q has %d fields, the set %d", text, len(parts), len(fields))
	}
	var out []byte
	var err error
	for i, p := range parts {
		if out, err = encodeField(out, fields[i], strings.TrimSpace(p), len(fields) > 1); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// keyRange is one element of an interval set: [start, end). end is nil when
// the interval runs to the end of the key space.
type keyRange struct {
	start, end []byte
	text       string
}

// encodeRange reads an interval element: "A/LEN", "A-B" or a single value.
func encodeRange(text string, f setField) (keyRange, error) {
	r := keyRange{text: text}
	text = strings.TrimSpace(text)
	if strings.Contains(text, "/") {
		p, err := netip.ParsePrefix(text)
		if err != nil || (f == fAddr4) != p.Addr().Is4() || (f != fAddr4 && f != fAddr6) {
			return r, fmt.Errorf("bad prefix %q", text)
		}
		p = p.Masked()
		r.start = p.Addr().AsSlice()
		last := slices.Clone(r.start)
		for i := p.Bits(); i < len(last)*8; i++ {
			last[i/8] |= 0x80 >> (i % 8)
		}
		r.end = increment(last)
		return r, nil
	}
	lo, hi, isRange := strings.Cut(text, "-")
	start, err := encodeField(nil, f, strings.TrimSpace(lo), false)
	if err != nil {
		return r, err
	}
	last := start
	if isRange {
		if last, err = encodeField(nil, f, strings.TrimSpace(hi), false); err != nil {
			return r, err
		}
		if bytes.Compare(last, start) < 0 {
			return r, fmt.Errorf("empty range %q", text)
		}
	}
	r.start, r.end = start, increment(slices.Clone(last))
	return r, nil
}

// increment adds one to a big-endian number in place; nil on overflow.
func increment(b []byte) []byte {
	for i := len(b) - 1; i >= 0; i-- {
		b[i]++
		if b[i] != 0 {
			return b
		}
	}
	return nil
}

// mergeRanges sorts ranges and merges the overlapping ones, as one set
// must not hold overlapping intervals (nft refuses them; the builder never
// writes them). Adjacent ranges stay apart, as nft keeps them.
func mergeRanges(rs []keyRange) []keyRange {
	slices.SortFunc(rs, func(a, b keyRange) int { return bytes.Compare(a.start, b.start) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && overlaps(&out[n-1], &r) {
			prev := &out[n-1]
			if prev.end != nil && (r.end == nil || bytes.Compare(r.end, prev.end) > 0) {
				prev.end = r.end
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// overlaps reports whether b (which does not start before a) starts inside a.
func overlaps(a, b *keyRange) bool {
	return a.end == nil || bytes.Compare(b.start, a.end) < 0
}

// protoNumbers are the protocols an element key may name.
var protoNumbers = map[string]byte{"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1, "icmpv6": 58}

var verdictKinds = map[string]expr.VerdictKind{"accept": expr.VerdictAccept, "drop": expr.VerdictDrop,
	"return": expr.VerdictReturn, "continue": expr.VerdictContinue, "jump": expr.VerdictJump, "goto": expr.VerdictGoto}

// parseVerdict parses the value of a verdict map element: accept, drop,
// return, continue, or jump or goto a chain.
func parseVerdict(text string) (*expr.Verdict, error) {
	f := strings.Fields(text)
	if len(f) > 0 {
		k, ok := verdictKinds[f[0]]
		toChain := k == expr.VerdictJump || k == expr.VerdictGoto
		if ok && len(f) == 1+btoi(toChain) {
			v := &expr.Verdict{Kind: k}
			if toChain {
				v.Chain = strings.Trim(f[1], `"`)
			}
			if toChain == (v.Chain != "") { // a jump or goto names its chain
				return v, nil
			}
		}
	}
	return nil, fmt.Errorf("verdict %q: not a verdict", text)
}

// appendElem appends one element of NFTA_SET_ELEM_LIST_ELEMENTS.
func (w *nlBuf) appendElem(key []byte, flags uint32, v *expr.Verdict, udata []byte) {
	n := w.nest(unix.NFTA_LIST_ELEM)
	if flags != 0 {
		w.attrU32(unix.NFTA_SET_ELEM_FLAGS, flags)
	}
	w.nestedValue(unix.NFTA_SET_ELEM_KEY, key)
	if v != nil {
		d := w.nest(unix.NFTA_SET_ELEM_DATA)
		w.appendVerdict(v)
		w.unnest(d)
	}
	if udata != nil {
		w.attr(unix.NFTA_SET_ELEM_USERDATA, udata)
	}
	w.unnest(n)
}

// appendVerdict appends NFTA_DATA_VERDICT { code [chain] }.
func (w *nlBuf) appendVerdict(v *expr.Verdict) {
	n := w.nest(unix.NFTA_DATA_VERDICT)
	w.attrU32(unix.NFTA_VERDICT_CODE, uint32(int32(v.Kind)))
	if v.Chain != "" {
		w.attrString(unix.NFTA_VERDICT_CHAIN, v.Chain)
	}
	w.unnest(n)
}
