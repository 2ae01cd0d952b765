package affinity

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// model is a deliberately naive Table: a slice in recency order, most
// recent first. The fuzzer checks that Table behaves exactly like it.
type model struct {
	max     int
	entries []modelEntry
}

type modelEntry struct {
	client, ep int
	lastUsed   time.Time
}

func (m *model) find(client int) int {
	return slices.IndexFunc(m.entries, func(e modelEntry) bool { return e.client == client })
}

func (m *model) toFront(i int) {
	e := m.entries[i]
	m.entries = slices.Insert(slices.Delete(m.entries, i, i+1), 0, e)
}

func (m *model) lookup(client int, now time.Time, timeout time.Duration) (int, bool) {
	i := m.find(client)
	if i < 0 {
		return 0, false
	}
	if timeout <= 0 || now.Sub(m.entries[i].lastUsed) > timeout {
		m.entries = slices.Delete(m.entries, i, i+1)
		return 0, false
	}
	if now.After(m.entries[i].lastUsed) {
		m.entries[i].lastUsed = now
	}
	m.toFront(i)
	return m.entries[0].ep, true
}

func (m *model) set(client, ep int, now time.Time) {
	if i := m.find(client); i >= 0 {
		m.entries[i].ep = ep
		if now.After(m.entries[i].lastUsed) {
			m.entries[i].lastUsed = now
		}
		m.toFront(i)
		return
	}
	if len(m.entries) >= m.max {
		m.entries = m.entries[:len(m.entries)-1]
	}
	m.entries = slices.Insert(m.entries, 0, modelEntry{client, ep, now})
}

func (m *model) deleteWhere(drop func(modelEntry) bool) int {
	n := len(m.entries)
	m.entries = slices.DeleteFunc(m.entries, drop)
	return n - len(m.entries)
}

func (m *model) dump() []string {
	var out []string
	for _, e := range m.entries {
		out = append(out, fmt.Sprintf("%v=%v@%v", e.client, e.ep, e.lastUsed.Sub(t0).Seconds()))
	}
	return out
}

// FuzzTable reads data as a table size followed by 3-byte operations:
// op and time step, client, endpoint. Time mostly moves forward but can step
// back, as it does between concurrent callers.
func FuzzTable(f *testing.F) {
	f.Add([]byte{2, 0, 1, 1, 8, 2, 1, 17, 1, 0, 0, 3, 2})
	f.Add([]byte{1, 0, 1, 1, 0, 2, 2, 1, 1, 1, 3, 0, 1, 4, 0, 0})
	f.Add([]byte{4, 0, 1, 1, 0, 2, 1, 0, 3, 2, 0xf4, 0, 0, 1, 1, 1, 2, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		maxEntries := int(data[0]%8) + 1
		tb := NewTable[int, int](Options{MaxEntries: maxEntries})
		m := &model{max: maxEntries}
		const timeout = 10 * time.Second
		now := t0
		for ops := data[1:]; len(ops) >= 3; ops = ops[3:] {
			op, step := ops[0]%5, int(ops[0]>>3)-8 // step in [-8, 23] seconds
			client, ep := int(ops[1]%16), int(ops[2]%4)
			now = now.Add(time.Duration(step) * time.Second)

			var got, want string
			switch op {
			case 0:
				tb.Set(client, ep, now)
				m.set(client, ep, now)
			case 1:
				gotEP, gotOK := tb.Lookup(client, now, timeout)
				wantEP, wantOK := m.lookup(client, now, timeout)
				got, want = fmt.Sprint(gotEP, gotOK), fmt.Sprint(wantEP, wantOK)
			case 2:
				tb.Delete(client)
				m.deleteWhere(func(e modelEntry) bool { return e.client == client })
			case 3:
				got = fmt.Sprint(tb.DeleteEndpoint(ep))
				want = fmt.Sprint(m.deleteWhere(func(e modelEntry) bool { return e.ep == ep }))
			case 4:
				got = fmt.Sprint(tb.Expire(now, timeout))
				want = fmt.Sprint(m.deleteWhere(func(e modelEntry) bool { return now.Sub(e.lastUsed) > timeout }))
			}
			if got != want {
				t.Fatalf("op %d client %d ep %d at %v: got %s, want %s", op, client, ep, now.Sub(t0), got, want)
			}
			if n := tb.Len(); n > maxEntries {
				t.Fatalf("Len() = %d > MaxEntries %d", n, maxEntries)
			}
			if err := check(tb); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(m.dump(), dump(tb)); diff != "" {
				t.Fatalf("table differs from model (-want +got):\n%s", diff)
			}
		}
	})
}
