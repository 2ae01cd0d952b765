//go:build linux

package nftables

import (
	"bytes"
	"errors"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// maxElemList bounds the element list of one message: the list is one
// attribute, whose length has 16 bits. A longer run of elements goes in
// several messages of the same batch, as nft splits them.
const maxElemList = 60000

// sameElementGroup reports whether b continues a's run of element
// operations: same verb, same set. A run goes in one message, so an
// interval set's elements can be merged and ordered together as nft does.
func sameElementGroup(a, b *op) bool {
	return a.kind == oElem && b.kind == oElem && a.verb == b.verb && a.set.name == b.set.name
}

// elemMessages writes element messages of one set, opening a new message
// when the current list is full.
type elemMessages struct {
	b          *nlBatch
	typ, flags uint16
	set        string
	msg, list  int // offsets; msg is -1 when no message is open
	info       int // index of the open message's msgInfo
}

func (m *elemMessages) add(op int, key []byte, flags uint32, v *expr.Verdict, udata []byte) {
	b := m.b
	if m.msg >= 0 && len(b.b)-m.list > maxElemList {
		m.close()
	}
	if m.msg < 0 {
		m.msg = b.message(op, m.typ, m.flags)
		m.info = len(b.infos) - 1
		b.attrString(unix.NFTA_SET_ELEM_LIST_TABLE, b.table)
		b.attrString(unix.NFTA_SET_ELEM_LIST_SET, m.set)
		m.list = b.nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	}
	b.infos[m.info].elems = append(b.infos[m.info].elems, elemAt{off: len(b.b) - m.msg, op: op})
	b.appendElem(key, flags, v, udata)
}

func (m *elemMessages) close() {
	if m.msg >= 0 {
		m.b.unnest(m.list)
		m.b.end(m.msg)
		m.msg = -1
	}
}

// addElements writes o[i:j], a run of element operations on one set. On
// error it returns the index of the operation at fault.
func (b *nlBatch) addElements(o ops, i, j int) (int, error) {
	s := o[i].set
	m := elemMessages{b: b, set: s.name, msg: -1}
	switch o[i].verb {
	case opAdd:
		m.typ, m.flags = unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE
	case opDelete:
		m.typ = unix.NFT_MSG_DELSETELEM
	default:
		return i, errors.New("an element cannot be flushed")
	}
	var err error
	if s.flags&flagInterval != 0 {
		i, err = b.intervalElements(&m, o, i, j)
	} else {
		i, err = b.plainElements(&m, o, i, j)
	}
	m.close()
	return i, err
}

func (b *nlBatch) plainElements(m *elemMessages, o ops, i, j int) (int, error) {
	fields := o[i].set.key.fields()
	for k := i; k < j; k++ {
		x := &o[k]
		kb, err := encodeKey(x.key, fields)
		if err != nil {
			return k, err
		}
		var v *expr.Verdict
		switch {
		case x.verb != opAdd:
		case x.set.isMap:
			if v, err = parseVerdict(x.value); err != nil {
				return k, err
			}
		case x.value != "":
			return k, errors.New("a set element has no value")
		}
		m.add(k, kb, 0, v, nil)
	}
	return i, nil
}

// intervalElements writes the elements of an interval set as nft does:
// each interval is a start element and an end element flagged
// NFT_SET_ELEM_INTERVAL_END at its end + 1 (none for an interval that runs
// to the end of the key space), and the first addition to an empty set
// starts with an end element at zero (unless an interval starts there).
// nft knows whether the set is empty from its cache; the writer knows it
// when the run declared or flushed the set, which is how lbkit fills its
// interval sets. The intervals added together are sorted, and overlapping
// ones merged. lbkit's interval sets are sets, not maps.
func (b *nlBatch) intervalElements(m *elemMessages, o ops, i, j int) (int, error) {
	ranges := make([]keyRange, 0, j-i)
	byText := make(map[string]int, j-i) // element text to its operation
	for k := i; k < j; k++ {
		x := &o[k]
		if x.set.isMap || x.value != "" {
			return k, errors.New("interval maps are not supported")
		}
		r, err := encodeRange(x.key, x.set.key[0])
		if err != nil {
			return k, err
		}
		byText[r.text] = k
		ranges = append(ranges, r)
	}
	add := o[i].verb == opAdd
	if add {
		ranges = mergeRanges(ranges)
		if b.empty[m.set] && len(ranges) > 0 {
			if !allZero(ranges[0].start) {
				m.add(i, make([]byte, len(ranges[0].start)), unix.NFT_SET_ELEM_INTERVAL_END, nil, nil)
			}
			delete(b.empty, m.set)
		}
	}
	for _, r := range ranges {
		k := byText[r.text]
		var udata []byte
		if r.end == nil && add {
			udata = elemOpenUdata
		}
		m.add(k, r.start, 0, nil, udata)
		if r.end != nil {
			m.add(k, r.end, unix.NFT_SET_ELEM_INTERVAL_END, nil, nil)
		}
	}
	return i, nil
}

func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }
