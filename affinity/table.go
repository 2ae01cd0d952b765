package affinity

import (
	"sync"
	"time"
)

// DefaultMaxEntries is the capacity of a Table whose Options.MaxEntries is <= 0.
const DefaultMaxEntries = 65536

// Options configures a Table.
type Options struct {
	// MaxEntries bounds the table; <= 0 means DefaultMaxEntries.
	MaxEntries int
}

// Table maps clients (K, e.g. netip.Addr) to the endpoint (V, e.g.
// netip.AddrPort) they were last sent to.
//
// An entry is live while timeout > 0 and now - lastUsed <= timeout, where
// timeout is the one passed to Lookup or Expire; a timeout <= 0 means no
// affinity, so nothing is live. Lookup hits refresh lastUsed, so stickiness
// lasts a timeout after the last use, not after the first.
//
// Methods are safe for concurrent use (one sync.Mutex). The zero Table is
// empty, has DefaultMaxEntries capacity and is ready to use. A Table must not
// be copied after first use.
type Table[K, V comparable] struct {
	mu         sync.Mutex
	maxEntries int // 0 means DefaultMaxEntries, so the zero Table works
	entries    map[K]*entry[K, V]
	// Recency list: head is the most recently used, tail the next to evict.
	head, tail *entry[K, V]
}

type entry[K, V comparable] struct {
	client     K
	ep         V
	lastUsed   time.Time
	prev, next *entry[K, V]
}

// NewTable returns an empty table configured by opts.
func NewTable[K, V comparable](opts Options) *Table[K, V] {
	return &Table[K, V]{maxEntries: max(opts.MaxEntries, 0)}
}

// Lookup returns the endpoint client is stuck to, if its entry is live at
// now. A hit refreshes the entry; an expired entry is removed.
func (t *Table[K, V]) Lookup(client K, now time.Time, timeout time.Duration) (V, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[client]
	if !ok {
		var zero V
		return zero, false
	}
	if !live(e, now, timeout) {
		t.remove(e)
		var zero V
		return zero, false
	}
	touch(e, now)
	t.moveToFront(e)
	return e.ep, true
}

// Set sticks client to ep as of now. When the table is full, the least
// recently used entry makes room.
func (t *Table[K, V]) Set(client K, ep V, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[client]; ok {
		e.ep = ep
		touch(e, now)
		t.moveToFront(e)
		return
	}
	if t.entries == nil {
		t.entries = make(map[K]*entry[K, V])
	}
	var e *entry[K, V]
	if len(t.entries) >= t.capacity() {
		// Reuse the evicted node: a full table then inserts without allocating.
		e = t.tail
		t.remove(e)
		*e = entry[K, V]{}
	} else {
		e = new(entry[K, V])
	}
	e.client, e.ep, e.lastUsed = client, ep, now
	t.entries[client] = e
	t.pushFront(e)
}

// Delete forgets client.
func (t *Table[K, V]) Delete(client K) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.entries[client]; ok {
		t.remove(e)
	}
}

// DeleteEndpoint forgets every client stuck to ep, e.g. because ep went
// away, and returns how many there were. It scans the whole table: endpoint
// removal is rare, and a reverse index would cost every Set.
func (t *Table[K, V]) DeleteEndpoint(ep V) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for e := t.head; e != nil; {
		next := e.next
		if e.ep == ep {
			t.remove(e)
			n++
		}
		e = next
	}
	return n
}

// Expire removes the entries that are not live at now and returns how many.
//
// It scans the whole table rather than stopping at the first live entry from
// the tail: concurrent callers' times arrive out of order, so recency order
// is not strictly lastUsed order.
func (t *Table[K, V]) Expire(now time.Time, timeout time.Duration) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for e := t.tail; e != nil; {
		prev := e.prev
		if !live(e, now, timeout) {
			t.remove(e)
			n++
		}
		e = prev
	}
	return n
}

// Len returns the number of entries, including expired ones that no Lookup
// or Expire has removed yet.
func (t *Table[K, V]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

func (t *Table[K, V]) capacity() int {
	if t.maxEntries <= 0 {
		return DefaultMaxEntries
	}
	return t.maxEntries
}

// live reports whether e is still sticky at now. The boundary is inclusive,
// like iptables' `recent --rcheck --seconds`.
func live[K, V comparable](e *entry[K, V], now time.Time, timeout time.Duration) bool {
	return timeout > 0 && now.Sub(e.lastUsed) <= timeout
}

// touch records a use at now. lastUsed only moves forward, so a caller whose
// time was read before another's but arrives after it cannot shorten a
// lifetime.
func touch[K, V comparable](e *entry[K, V], now time.Time) {
	if now.After(e.lastUsed) {
		e.lastUsed = now
	}
}

func (t *Table[K, V]) pushFront(e *entry[K, V]) {
	e.prev, e.next = nil, t.head
	if t.head != nil {
		t.head.prev = e
	} else {
		t.tail = e
	}
	t.head = e
}

func (t *Table[K, V]) unlink(e *entry[K, V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		t.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		t.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (t *Table[K, V]) moveToFront(e *entry[K, V]) {
	if t.head == e {
		return
	}
	t.unlink(e)
	t.pushFront(e)
}

func (t *Table[K, V]) remove(e *entry[K, V]) {
	t.unlink(e)
	delete(t.entries, e.client)
}
