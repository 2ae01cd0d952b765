package pmap

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// A weak hash forces collisions into the buckets as well as spreading keys.
func weakHash(k int) uint64 { return uint64(k % 1000) }

func fullHash(k int) uint64 { return Finalize(uint64(k)) }

// TestAgainstGoMap applies random sets and deletes to a Map and to a Go map
// and compares them after every step, keeping old versions to check that
// they never change.
func TestAgainstGoMap(t *testing.T) {
	for name, hash := range map[string]func(int) uint64{"weak": weakHash, "full": fullHash} {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			m := New[int, int](hash)
			want := map[int]int{}
			type version struct {
				m    Map[int, int]
				want map[int]int
			}
			var versions []version
			for step := range 5000 {
				k := r.IntN(3000)
				if r.IntN(3) == 0 {
					m = m.Delete(k)
					delete(want, k)
				} else {
					m = m.Set(k, step)
					want[k] = step
				}
				if step%500 == 0 {
					cp := make(map[int]int, len(want))
					for k, v := range want {
						cp[k] = v
					}
					versions = append(versions, version{m, cp})
				}
			}
			versions = append(versions, version{m, want})
			for i, v := range versions {
				if v.m.Len() != len(v.want) {
					t.Fatalf("version %d: Len %d, want %d", i, v.m.Len(), len(v.want))
				}
				for k := range 3000 {
					got, ok := v.m.Get(k)
					w, wok := v.want[k]
					if ok != wok || got != w {
						t.Fatalf("version %d: Get(%d) = %d, %v; want %d, %v", i, k, got, ok, w, wok)
					}
				}
				n := 0
				v.m.All(func(k, val int) bool {
					n++
					if v.want[k] != val {
						t.Fatalf("version %d: All yields %d=%d, want %d", i, k, val, v.want[k])
					}
					return true
				})
				if n != len(v.want) {
					t.Fatalf("version %d: All yields %d keys, want %d", i, n, len(v.want))
				}
			}
		})
	}
}

func TestGetAllocatesNothing(t *testing.T) {
	m := New[int, int](fullHash)
	for i := range 1000 {
		m = m.Set(i, i)
	}
	if n := testing.AllocsPerRun(100, func() { m.Get(500) }); n != 0 {
		t.Errorf("Get allocates %v times", n)
	}
}

// String tells 200,000 names of every length apart, and the trie's first
// 20 bits spread them: no slot of the 2^20 gets more than a handful.
func TestStringSpreads(t *testing.T) {
	seen := map[uint64]string{}
	slots := map[uint64]int{}
	for i := range 200000 {
		s := strconv.Itoa(i)
		s = strings.Repeat("n", i%23) + s // lengths 1 to 28: every chunking
		h := Finalize(String(Offset, s))
		if o, dup := seen[h]; dup {
			t.Fatalf("String(%q) = String(%q)", s, o)
		}
		seen[h] = s
		slots[h&(1<<20-1)]++
	}
	most := 0
	for _, n := range slots {
		most = max(most, n)
	}
	if most > 8 {
		t.Errorf("a 20-bit slot holds %d of 200,000 names; the hash spreads badly", most)
	}
}
