//go:build linux

package nftables

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	gnft "github.com/google/nftables"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"
)

// maxElemList bounds the element list of one message: the list is one
// attribute, whose length has 16 bits. A longer run of elements goes in
// several messages of the same batch, as nft splits them.
const maxElemList = 60000

// sameElementGroup reports whether b continues a's run of element
// operations: same verb, same set. A run goes in one message, so an
// interval set's elements can be merged and ordered together as nft does.
func sameElementGroup(a, b op) bool {
	ea, ok1 := a.obj.(*knftables.Element)
	eb, ok2 := b.obj.(*knftables.Element)
	return ok1 && ok2 && a.verb == b.verb && ea.Set == eb.Set && ea.Map == eb.Map
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

func (m *elemMessages) add(op int, key []byte, flags uint32, v elemValue, udata []byte) {
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
	first := o[i].obj.(*knftables.Element)
	name := first.Set
	if first.Map != "" {
		name = first.Map
	}
	v := o[i].verb
	m := elemMessages{b: b, set: name, msg: -1}
	switch v {
	case opAdd:
		m.typ, m.flags = unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE
	case opDelete:
		m.typ = unix.NFT_MSG_DELSETELEM
	default:
		return i, errUnsupportedVerb
	}
	d := b.decl(name)
	interval := d != nil && d.interval()
	var err error
	if d == nil {
		// Undeclared here: an interval set is one whose elements are
		// written as prefixes or ranges, as the builder writes them. Only
		// single plain values ("10.0.0.1", "8080") could belong to either
		// kind; then the kernel says which it is.
		ambiguous := true
		for k := i; k < j && !interval; k++ {
			e := o[k].obj.(*knftables.Element)
			single := len(e.Key) == 1 && !strings.Contains(e.Key[0], " . ")
			interval = single && strings.ContainsAny(e.Key[0], "/-")
			ambiguous = ambiguous && single
		}
		if !interval && ambiguous {
			if interval, err = b.kernelInterval(name); err != nil {
				return i, err
			}
		}
	}
	if interval {
		i, err = b.intervalElements(&m, o, i, j, d)
	} else {
		i, err = b.plainElements(&m, o, i, j, d)
	}
	m.close()
	return i, err
}

func elementText(e *knftables.Element) (key, value string, err error) {
	if e.Comment != nil {
		return "", "", errors.New("element comments are not supported")
	}
	if len(e.Key) == 0 {
		return "", "", errors.New("element without a key")
	}
	return strings.Join(e.Key, " . "), strings.Join(e.Value, " . "), nil
}

func (b *nlBatch) plainElements(m *elemMessages, o ops, i, j int, d *setDecl) (int, error) {
	for k := i; k < j; k++ {
		key, value, err := elementText(o[k].obj.(*knftables.Element))
		if err != nil {
			return k, err
		}
		var fields []setField
		if d != nil {
			fields = d.key
		} else if fields, err = inferFields(strings.Split(key, " . ")); err != nil {
			return k, err
		}
		kb, err := encodeKey(key, fields)
		if err != nil {
			return k, err
		}
		var ev elemValue
		if o[k].verb == opAdd {
			switch {
			case value != "" && d != nil && !d.isMap():
				return k, errors.New("a set element has no value")
			case value == "" && (d != nil && d.isMap() || o[k].obj.(*knftables.Element).Map != ""):
				return k, errors.New("a map element needs a value")
			case value != "":
				if ev, err = d.encodeValue(value); err != nil {
					return k, err
				}
			}
		}
		m.add(k, kb, 0, ev, nil)
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
// ones merged.
func (b *nlBatch) intervalElements(m *elemMessages, o ops, i, j int, d *setDecl) (int, error) {
	ranges := make([]keyRange, 0, j-i)
	byText := make(map[string]int, j-i) // element text to its operation
	for k := i; k < j; k++ {
		key, value, err := elementText(o[k].obj.(*knftables.Element))
		if err != nil {
			return k, err
		}
		var f setField
		if d != nil {
			f = d.key[0]
		} else {
			fields, err := inferFields([]string{key})
			if err != nil {
				return k, err
			}
			f = fields[0]
		}
		r, err := encodeRange(key, f)
		if err != nil {
			return k, err
		}
		if o[k].verb == opAdd && value != "" {
			if d == nil || !d.isMap() {
				return k, errors.New("only a map's elements have a value")
			}
			if _, err := d.encodeValue(value); err != nil {
				return k, err
			}
			r.value = value
		}
		byText[r.text] = k
		ranges = append(ranges, r)
	}
	if o[i].verb == opAdd {
		var err error
		if ranges, err = mergeRanges(ranges); err != nil {
			return i, err
		}
		if b.empty[m.set] && len(ranges) > 0 {
			if !allZero(ranges[0].start) {
				m.add(i, make([]byte, len(ranges[0].start)), unix.NFT_SET_ELEM_INTERVAL_END, elemValue{}, nil)
			}
			delete(b.empty, m.set)
		}
	}
	for _, r := range ranges {
		k := byText[r.text]
		var ev elemValue
		if r.value != "" {
			ev, _ = d.encodeValue(r.value) // checked above
		}
		var udata []byte
		if r.end == nil && o[i].verb == opAdd {
			udata = elemOpenUdata
		}
		m.add(k, r.start, 0, ev, udata)
		if r.end != nil {
			m.add(k, r.end, unix.NFT_SET_ELEM_INTERVAL_END, elemValue{}, nil)
		}
	}
	return i, nil
}

func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

// kernelInterval asks the kernel whether a set this writer has not seen
// declared is an interval set. A set that does not exist is not one (the
// batch will fail on it anyway).
func (b *nlBatch) kernelInterval(name string) (bool, error) {
	c, err := gnft.New() // a socket in the calling thread's namespace
	if err != nil {
		return false, err
	}
	s, err := c.GetSetByName(&gnft.Table{Name: b.table, Family: gnft.TableFamily(b.nfproto)}, name)
	if notFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up set %s: %w", name, err)
	}
	return s.Interval, nil
}
