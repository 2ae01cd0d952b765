package affinity

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func at(secs int) time.Time { return t0.Add(time.Duration(secs) * time.Second) }

// dump lists the entries from most to least recently used, as
// "client=endpoint@seconds since t0", so tests can compare whole tables.
func dump[K, V comparable](t *Table[K, V]) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for e := t.head; e != nil; e = e.next {
		out = append(out, fmt.Sprintf("%v=%v@%v", e.client, e.ep, e.lastUsed.Sub(t0).Seconds()))
	}
	return out
}

// check verifies that the recency list and the map hold the same entries and
// that the table is within its bound.
func check[K, V comparable](t *Table[K, V]) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	var prev *entry[K, V]
	for e := t.head; e != nil; e = e.next {
		if e.prev != prev {
			return fmt.Errorf("entry %v: prev link broken", e.client)
		}
		if t.entries[e.client] != e {
			return fmt.Errorf("entry %v: not in map", e.client)
		}
		prev, n = e, n+1
	}
	if t.tail != prev {
		return errors.New("tail is not the last entry")
	}
	if n != len(t.entries) {
		return fmt.Errorf("list has %d entries, map %d", n, len(t.entries))
	}
	if n > t.capacity() {
		return fmt.Errorf("%d entries exceed capacity %d", n, t.capacity())
	}
	return nil
}

// step is one operation on a Table[string, string]. Its result is rendered
// as "ep", "miss" or a count, so a whole sequence compares with cmp.Diff.
type step struct {
	op      string // set, lookup, delete, deleteEndpoint, expire
	client  string
	ep      string
	at      int // seconds since t0
	timeout int // seconds
}

func (s step) run(tb *Table[string, string]) string {
	timeout := time.Duration(s.timeout) * time.Second
	switch s.op {
	case "set":
		tb.Set(s.client, s.ep, at(s.at))
		return ""
	case "lookup":
		if ep, ok := tb.Lookup(s.client, at(s.at), timeout); ok {
			return ep
		}
		return "miss"
	case "delete":
		tb.Delete(s.client)
		return ""
	case "deleteEndpoint":
		return fmt.Sprint(tb.DeleteEndpoint(s.ep))
	case "expire":
		return fmt.Sprint(tb.Expire(at(s.at), timeout))
	}
	panic("unknown op " + s.op)
}

func TestTable(t *testing.T) {
	tests := []struct {
		name        string
		max         int
		steps       []step
		wantResults []string
		wantTable   []string
	}{{
		name:        "miss on empty",
		steps:       []step{{op: "lookup", client: "a", timeout: 10}},
		wantResults: []string{"miss"},
	}, {
		name: "hit within timeout, boundary inclusive",
		steps: []step{
			{op: "set", client: "a", ep: "e1", at: 0},
			{op: "lookup", client: "a", at: 10, timeout: 10},
		},
		wantResults: []string{"", "e1"},
		wantTable:   []string{"a=e1@10"},
	}, {
		name: "expired lookup misses and removes",
		steps: []step{
			{op: "set", client: "a", ep: "e1", at: 0},
			{op: "lookup", client: "a", at: 11, timeout: 10},
		},
		wantResults: []string{"", "miss"},
	}, {
		name: "hits extend the lifetime from the last use",
		steps: []step{
			{op: "set", client: "a", ep: "e1", at: 0},
			{op: "lookup", client: "a", at: 8, timeout: 10},
			{op: "lookup", client: "a", at: 18, timeout: 10},
			{op: "lookup", client: "a", at: 29, timeout: 10},
		},
		wantResults: []string{"", "e1", "e1", "miss"},
	}, {
		name: "zero timeout means no affinity",
		steps: []step{
			{op: "set", client: "a", ep: "e1", at: 0},
			{op: "lookup", client: "a", at: 0, timeout: 0},
		},
		wantResults: []string{"", "miss"},
	}, {
		name: "late caller does not move lastUsed back",
		steps: []step{
			{op: "set", client: "a", ep: "e1", at: 10},
			{op: "lookup", client: "a", at: 5, timeout: 10},
			{op: "set", client: "a", ep: "e2", at: 7},
		},
		wantResults: []string{"", "e1", ""},
		wantTable:   []string{"a=e2@10"},
	}, {
		name: "set replaces endpoint without eviction",
		max:  2,
		steps: []step{
			{op: "set", client: "a", ep: "e1", at: 0},
			{op: "set", client: "b", ep: "e1", at: 1},
			{op: "set", client: "a", ep: "e2", at: 2},
		},
		wantResults: []string{"", "", ""},
		wantTable:   []string{"a=e2@2", "b=e1@1"},
	}, {
		name: "full table evicts least recently used",
		max:  2,
		steps: []step{
			{op: "set", client: "a", ep: "e1", at: 0},
			{op: "set", client: "b", ep: "e1", at: 1},
			{op: "lookup", client: "a", at: 2, timeout: 10},
			{op: "set", client: "c", ep: "e2", at: 3},
			{op: "lookup", client: "b", at: 3, timeout: 10},
		},
		wantResults: []string{"", "", "e1", "", "miss"},
		wantTable:   []string{"c=e2@3", "a=e1@2"},
	}, {
		name: "max 1",
		max:  1,
		steps: []step{
			{op: "set", client: "a", ep: "e1", at: 0},
			{op: "set", client: "b", ep: "e2", at: 1},
		},
		wantResults: []string{"", ""},
		wantTable:   []string{"b=e2@1"},
	}, {
		name: "delete",
		steps: []step{
			{op: "set", client: "a", ep: "e1", at: 0},
			{op: "set", client: "b", ep: "e1", at: 0},
			{op: "delete", client: "a"},
			{op: "delete", client: "zz"},
		},
		wantResults: []string{"", "", "", ""},
		wantTable:   []string{"b=e1@0"},
	}, {
		name: "deleteEndpoint removes every client of it",
		steps: []step{
			{op: "set", client: "a", ep: "e1", at: 0},
			{op: "set", client: "b", ep: "e2", at: 1},
			{op: "set", client: "c", ep: "e1", at: 2},
			{op: "deleteEndpoint", ep: "e1"},
			{op: "deleteEndpoint", ep: "e1"},
		},
		wantResults: []string{"", "", "", "2", "0"},
		wantTable:   []string{"b=e2@1"},
	}, {
		// c is the most recently used but has the oldest time, as when
		// concurrent callers arrive out of order: Expire must still find it.
		name: "expire drops only expired entries",
		steps: []step{
			{op: "set", client: "a", ep: "e1", at: 0},
			{op: "set", client: "b", ep: "e1", at: 5},
			{op: "set", client: "c", ep: "e2", at: 1},
			{op: "expire", at: 12, timeout: 10},
		},
		wantResults: []string{"", "", "", "2"},
		wantTable:   []string{"b=e1@5"},
	}, {
		name: "expire with zero timeout empties",
		steps: []step{
			{op: "set", client: "a", ep: "e1", at: 0},
			{op: "expire", at: 0, timeout: 0},
		},
		wantResults: []string{"", "1"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := NewTable[string, string](Options{MaxEntries: tt.max})
			var got []string
			for _, s := range tt.steps {
				got = append(got, s.run(tb))
				if err := check(tb); err != nil {
					t.Fatalf("after %+v: %v", s, err)
				}
			}
			if diff := cmp.Diff(tt.wantResults, got); diff != "" {
				t.Errorf("results mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantTable, dump(tb)); diff != "" {
				t.Errorf("table mismatch (-want +got):\n%s", diff)
			}
			if got, want := tb.Len(), len(tt.wantTable); got != want {
				t.Errorf("Len() = %d, want %d", got, want)
			}
		})
	}
}

func TestTableExpiryIsExact(t *testing.T) {
	tb := NewTable[string, string](Options{})
	tb.Set("a", "e1", t0)
	if _, ok := tb.Lookup("a", t0.Add(time.Second), time.Second); !ok {
		t.Errorf("Lookup at exactly the timeout missed")
	}
	// The hit above refreshed lastUsed to t0+1s.
	if _, ok := tb.Lookup("a", t0.Add(2*time.Second+1), time.Second); ok {
		t.Errorf("Lookup 1ns past the timeout hit")
	}
}

func TestTableZeroValue(t *testing.T) {
	var tb Table[string, string]
	if _, ok := tb.Lookup("a", t0, time.Second); ok {
		t.Fatal("zero Table had an entry")
	}
	tb.Delete("a")
	if n := tb.DeleteEndpoint("e"); n != 0 {
		t.Errorf("DeleteEndpoint on zero Table = %d, want 0", n)
	}
	if n := tb.Expire(t0, time.Second); n != 0 {
		t.Errorf("Expire on zero Table = %d, want 0", n)
	}
	tb.Set("a", "e1", t0)
	if ep, ok := tb.Lookup("a", t0, time.Second); !ok || ep != "e1" {
		t.Errorf("Lookup = %q, %v; want e1, true", ep, ok)
	}
}

func TestTableDefaultCapacity(t *testing.T) {
	for _, n := range []int{0, -1} {
		tb := NewTable[int, int](Options{MaxEntries: n})
		for i := range DefaultMaxEntries + 10 {
			tb.Set(i, i, t0)
		}
		if got := tb.Len(); got != DefaultMaxEntries {
			t.Errorf("MaxEntries %d: Len() = %d, want %d", n, got, DefaultMaxEntries)
		}
		if _, ok := tb.Lookup(9, t0, time.Second); ok {
			t.Errorf("MaxEntries %d: oldest entries were not evicted", n)
		}
	}
}

func TestTableLookupAllocs(t *testing.T) {
	tb, clients := filledTable(1024)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := tb.Lookup(clients[i%len(clients)], t0, time.Hour); !ok {
			t.Fatal("miss")
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("Lookup hit allocates %v times, want 0", allocs)
	}
}

func TestTableConcurrent(t *testing.T) {
	const maxEntries = 32
	tb := NewTable[int, int](Options{MaxEntries: maxEntries})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 0))
			for i := range 5000 {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				client, ep := r.IntN(100), r.IntN(8)
				switch r.IntN(10) {
				case 0:
					tb.Delete(client)
				case 1:
					tb.DeleteEndpoint(ep)
				case 2:
					tb.Expire(now, time.Second)
				case 3, 4, 5:
					tb.Set(client, ep, now)
				default:
					tb.Lookup(client, now, time.Second)
				}
				if n := tb.Len(); n > maxEntries {
					t.Errorf("Len() = %d > %d", n, maxEntries)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := check(tb); err != nil {
		t.Fatal(err)
	}
}

func filledTable(n int) (*Table[netip.Addr, netip.AddrPort], []netip.Addr) {
	tb := NewTable[netip.Addr, netip.AddrPort](Options{})
	clients := make([]netip.Addr, n)
	ep := netip.MustParseAddrPort("10.0.0.1:8080")
	for i := range clients {
		clients[i] = netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)})
		tb.Set(clients[i], ep, t0)
	}
	return tb, clients
}

func BenchmarkTableLookup(b *testing.B) {
	tb, clients := filledTable(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := tb.Lookup(clients[i%len(clients)], t0, time.Hour); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

// BenchmarkTableSetFull measures inserts into a full table, each evicting.
func BenchmarkTableSetFull(b *testing.B) {
	tb := NewTable[int, int](Options{MaxEntries: 1024})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tb.Set(i, i, t0)
		i++
	}
}
