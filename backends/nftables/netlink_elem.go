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
	"time"

	gnft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"
)

// setField is the type of one field of a set key or of a map's data: the
// types lbkit's containers use.
type setField uint8

const (
	fAddr4 setField = iota + 1
	fAddr6
	fProto
	fService
)

var setFieldNames = map[string]setField{
	"ipv4_addr": fAddr4, "ipv6_addr": fAddr6, "inet_proto": fProto, "inet_service": fService,
}

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

func (f setField) size() int { return int(f.datatype().Bytes) }

// byteOrder is what nft records in a set's user data for a field
// (BYTEORDER_BIG_ENDIAN is 2; a one-byte protocol has none).
func (f setField) byteOrder() uint32 {
	if f == fProto {
		return 0
	}
	return 2
}

// setDecl is what a set or map declaration says about its elements.
type setDecl struct {
	key     []setField
	data    setField // map data, 0 for a set or a verdict map
	verdict bool     // a verdict map
	flags   uint32   // unix.NFT_SET_*
	timeout time.Duration
}

func (d *setDecl) isMap() bool        { return d.verdict || d.data != 0 }
func (d *setDecl) interval() bool     { return d.flags&unix.NFT_SET_INTERVAL != 0 }
func (d *setDecl) concatenated() bool { return len(d.key) > 1 }

// parseSetDecl reads a Set's or Map's type text ("ipv4_addr . inet_proto .
// inet_service : verdict"), flags and timeout.
func parseSetDecl(isMap bool, typ string, flags []knftables.SetFlag, timeout *time.Duration) (*setDecl, error) {
	d := &setDecl{}
	keyText, dataText, hasData := strings.Cut(typ, " : ")
	if hasData != isMap {
		return nil, fmt.Errorf("type %q: a map's type has a data type after \" : \", a set's has none", typ)
	}
	for _, name := range strings.Split(keyText, " . ") {
		f, ok := setFieldNames[strings.TrimSpace(name)]
		if !ok {
			return nil, fmt.Errorf("type %q: unsupported key type %q", typ, name)
		}
		d.key = append(d.key, f)
	}
	if len(d.key) > 32/gnft.SetConcatTypeBits {
		return nil, fmt.Errorf("type %q: too many fields", typ)
	}
	if hasData {
		dataText = strings.TrimSpace(dataText)
		if dataText == "verdict" {
			d.verdict = true
		} else if d.data = setFieldNames[dataText]; d.data == 0 {
			return nil, fmt.Errorf("type %q: unsupported data type %q", typ, dataText)
		}
		d.flags |= unix.NFT_SET_MAP
	}
	for _, f := range flags {
		switch f {
		case knftables.IntervalFlag:
			d.flags |= unix.NFT_SET_INTERVAL
		case knftables.TimeoutFlag:
			d.flags |= unix.NFT_SET_TIMEOUT
		case knftables.DynamicFlag:
			d.flags |= unix.NFT_SET_EVAL
		case knftables.ConstantFlag:
			d.flags |= unix.NFT_SET_CONSTANT
		default:
			return nil, fmt.Errorf("unsupported set flag %q", f)
		}
	}
	if d.interval() && d.concatenated() {
		return nil, fmt.Errorf("type %q: interval concatenations are not supported", typ)
	}
	if timeout != nil && *timeout > 0 {
		// As nft: a default timeout makes a timeout set.
		d.timeout = *timeout
		d.flags |= unix.NFT_SET_TIMEOUT
	}
	return d, nil
}

// keyType returns the key's type number and length as nft declares them: a
// concatenation packs its fields' type numbers and pads each field to 4
// bytes.
func (d *setDecl) keyType() (magic, length uint32, err error) {
	if !d.concatenated() {
		t := d.key[0].datatype()
		return t.GetNFTMagic(), t.Bytes, nil
	}
	types := make([]gnft.SetDatatype, len(d.key))
	for i, f := range d.key {
		types[i] = f.datatype()
	}
	t, err := gnft.ConcatSetType(types...)
	return t.GetNFTMagic(), t.Bytes, err
}

// userData is the set's user data as nft writes it: key (and data) byte
// order, which nft reads back when it lists the set.
func (d *setDecl) userData() []byte {
	const (
		udKeyByteOrder  = 0
		udDataByteOrder = 1
		udDataInterval  = 6
	)
	keyOrder := uint32(0)
	if !d.concatenated() {
		keyOrder = d.key[0].byteOrder()
	}
	ud := appendUdataU32(nil, udKeyByteOrder, keyOrder)
	if d.isMap() {
		dataOrder := uint32(0)
		if d.data != 0 {
			dataOrder = d.data.byteOrder()
		}
		ud = appendUdataU32(ud, udDataByteOrder, dataOrder)
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

// inferFields guesses a key's field types from its text, for a set this
// writer has not seen declared: addresses are addresses, protocol names
// are protocols and numbers are ports, which covers lbkit's containers.
func inferFields(fields []string) ([]setField, error) {
	out := make([]setField, len(fields))
	for i, f := range fields {
		v, _, _ := strings.Cut(strings.TrimSpace(f), "/")
		v, _, _ = strings.Cut(v, "-")
		switch {
		case strings.ContainsAny(v, ".:"):
			a, err := netip.ParseAddr(v)
			if err != nil {
				return nil, fmt.Errorf("bad address %q", f)
			}
			out[i] = fAddr6
			if a.Is4() {
				out[i] = fAddr4
			}
		case protoNumbers[v] != 0:
			out[i] = fProto
		default:
			out[i] = fService
		}
	}
	return out, nil
}

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
	value      string // map data, as text
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
func mergeRanges(rs []keyRange) ([]keyRange, error) {
	slices.SortFunc(rs, func(a, b keyRange) int { return bytes.Compare(a.start, b.start) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && overlaps(&out[n-1], &r) {
			prev := &out[n-1]
			if prev.value != r.value {
				return nil, fmt.Errorf("elements %q and %q overlap with different values", prev.text, r.text)
			}
			if prev.end != nil && (r.end == nil || bytes.Compare(r.end, prev.end) > 0) {
				prev.end = r.end
			}
			continue
		}
		out = append(out, r)
	}
	return out, nil
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
			return v, nil
		}
	}
	return nil, fmt.Errorf("verdict %q: not a verdict", text)
}

// elemValue is the encoded value of a map element.
type elemValue struct {
	verdict *expr.Verdict
	data    []byte
}

func (d *setDecl) encodeValue(text string) (elemValue, error) {
	if d == nil || d.verdict {
		v, err := parseVerdict(text)
		return elemValue{verdict: v}, err
	}
	b, err := encodeField(nil, d.data, strings.TrimSpace(text), false)
	return elemValue{data: b}, err
}

// appendElem appends one element of NFTA_SET_ELEM_LIST_ELEMENTS.
func (w *nlBuf) appendElem(key []byte, flags uint32, v elemValue, udata []byte) {
	n := w.nest(unix.NFTA_LIST_ELEM)
	if flags != 0 {
		w.attrU32(unix.NFTA_SET_ELEM_FLAGS, flags)
	}
	w.nestedValue(unix.NFTA_SET_ELEM_KEY, key)
	switch {
	case v.verdict != nil:
		d := w.nest(unix.NFTA_SET_ELEM_DATA)
		w.appendVerdict(v.verdict)
		w.unnest(d)
	case v.data != nil:
		w.nestedValue(unix.NFTA_SET_ELEM_DATA, v.data)
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
