//go:build linux

package nftables

import (
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"
)

// nlBuf builds a whole nf_tables batch in one byte slice: one sendmsg
// carries it, which is what makes it one transaction (the kernel only
// commits a batch that begins and ends in the same datagram). Messages and
// attributes are appended in place, and lengths are patched when an item
// ends, so a 20,000-message batch costs no allocation per attribute.
type nlBuf struct {
	b   []byte
	seq uint32
	err error // a nested attribute too long for its 16-bit length
}

const (
	nlmsgHdrLen  = unix.SizeofNlMsghdr // 16
	nfgenHdrLen  = 4
	nlaHdrLen    = unix.SizeofNlAttr // 4
	nlaMaxLen    = 0xffff
	nftMsgPrefix = unix.NFNL_SUBSYS_NFTABLES << 8
)

var errAttrTooLong = errors.New("netlink attribute longer than 65535 bytes")

// begin starts a message and returns its offset, for end. Every message gets
// the next sequence number, which is how a kernel error is traced back to
// the operation that caused it.
func (w *nlBuf) begin(typ, flags uint16, family uint8) int {
	start := len(w.b)
	w.seq++
	var h [nlmsgHdrLen + nfgenHdrLen]byte
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], flags|unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(h[8:], w.seq)
	h[16] = family // nfgenmsg: family, version 0, resource id 0
	if typ == unix.NFNL_MSG_BATCH_BEGIN || typ == unix.NFNL_MSG_BATCH_END {
		binary.BigEndian.PutUint16(h[18:], unix.NFNL_SUBSYS_NFTABLES)
	}
	w.b = append(w.b, h[:]...)
	return start
}

// end sets the length of the message begun at start.
func (w *nlBuf) end(start int) {
	binary.NativeEndian.PutUint32(w.b[start:], uint32(len(w.b)-start))
}

func (w *nlBuf) attr(typ uint16, data []byte) {
	w.attrHeader(typ, len(data))
	w.b = append(w.b, data...)
	w.pad()
}

func (w *nlBuf) attrString(typ uint16, s string) {
	w.attrHeader(typ, len(s)+1)
	w.b = append(w.b, s...)
	w.b = append(w.b, 0)
	w.pad()
}

func (w *nlBuf) attrU32(typ uint16, v uint32) {
	w.attrHeader(typ, 4)
	w.b = binary.BigEndian.AppendUint32(w.b, v)
}

func (w *nlBuf) attrU64(typ uint16, v uint64) {
	w.attrHeader(typ, 8)
	w.b = binary.BigEndian.AppendUint64(w.b, v)
}

func (w *nlBuf) attrHeader(typ uint16, n int) {
	if nlaHdrLen+n > nlaMaxLen {
		w.err = errAttrTooLong
	}
	w.b = binary.NativeEndian.AppendUint16(w.b, uint16(nlaHdrLen+n))
	w.b = binary.NativeEndian.AppendUint16(w.b, typ)
}

func (w *nlBuf) pad() {
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
}

// nest starts a nested attribute; close it with unnest.
func (w *nlBuf) nest(typ uint16) int {
	start := len(w.b)
	w.attrHeader(typ|unix.NLA_F_NESTED, 0)
	return start
}

func (w *nlBuf) unnest(start int) {
	n := len(w.b) - start
	if n > nlaMaxLen {
		w.err = errAttrTooLong
	}
	binary.NativeEndian.PutUint16(w.b[start:], uint16(n))
}

// nestedValue appends typ { NFTA_DATA_VALUE data }, the form of set keys
// and element data.
func (w *nlBuf) nestedValue(typ uint16, data []byte) {
	n := w.nest(typ)
	w.attr(unix.NFTA_DATA_VALUE, data)
	w.unnest(n)
}
