// Package pmap is a persistent hash map: every change returns a new Map
// that shares all unchanged nodes with the old one, so a writer can publish
// versions (through an atomic pointer) while readers look keys up without
// locks or allocations.
//
// The map is a fixed-depth 32-way trie indexed by a 64-bit hash of the key;
// the last level holds small buckets for the rare keys whose hashes agree
// on every level's bits. A change copies the nodes on one path: a handful
// of small arrays whatever the size of the map.
package pmap

import "math/bits"

const (
	levelBits = 5
	levels    = 4 // 20 bits of the hash; buckets below hold the rest
)

// Map is an immutable map from K to V. The zero Map is empty and usable
// once it has a hash function: build maps with New.
type Map[K comparable, V any] struct {
	root *node[K, V]
	len  int
	hash func(K) uint64
}

type node[K comparable, V any] struct {
	bitmap uint32
	kids   []*node[K, V] // inner levels: populated slots in bit order
	bucket []kv[K, V]    // last level
}

type kv[K comparable, V any] struct {
	k K
	v V
}

// New returns an empty map that hashes keys with hash. hash must be
// deterministic and should spread its low 30 bits well.
func New[K comparable, V any](hash func(K) uint64) Map[K, V] {
	return Map[K, V]{hash: hash}
}

// Len returns the number of keys.
func (m Map[K, V]) Len() int { return m.len }

func slot(h uint64, level int) uint32 { return uint32(h>>(level*levelBits)) & 31 }

func (n *node[K, V]) child(s uint32) *node[K, V] {
	if n == nil || n.bitmap&(1<<s) == 0 {
		return nil
	}
	return n.kids[bits.OnesCount32(n.bitmap&(1<<s-1))]
}

// Get returns the value of k.
func (m Map[K, V]) Get(k K) (V, bool) {
	n := m.root
	if n != nil {
		h := m.hash(k)
		for level := 0; level < levels && n != nil; level++ {
			n = n.child(slot(h, level))
		}
		if n != nil {
			for i := range n.bucket {
				if n.bucket[i].k == k {
					return n.bucket[i].v, true
				}
			}
		}
	}
	var zero V
	return zero, false
}

// Set returns a map in which k maps to v.
func (m Map[K, V]) Set(k K, v V) Map[K, V] {
	root, delta := setAt(m.root, m.hash(k), 0, k, &v)
	return Map[K, V]{root: root, len: m.len + delta, hash: m.hash}
}

// Delete returns a map without k.
func (m Map[K, V]) Delete(k K) Map[K, V] {
	if m.root == nil {
		return m
	}
	root, delta := setAt(m.root, m.hash(k), 0, k, nil)
	return Map[K, V]{root: root, len: m.len + delta, hash: m.hash}
}

// All calls f for every key and value, in hash order, until f returns
// false.
func (m Map[K, V]) All(f func(K, V) bool) {
	walk(m.root, 0, f)
}

func walk[K comparable, V any](n *node[K, V], level int, f func(K, V) bool) bool {
	if n == nil {
		return true
	}
	if level == levels {
		for _, e := range n.bucket {
			if !f(e.k, e.v) {
				return false
			}
		}
		return true
	}
	for _, kid := range n.kids {
		if !walk(kid, level+1, f) {
			return false
		}
	}
	return true
}

// setAt sets (v != nil) or deletes (v == nil) k below n and returns the new
// node and the change in the number of keys.
func setAt[K comparable, V any](n *node[K, V], h uint64, level int, k K, v *V) (*node[K, V], int) {
	if level == levels {
		return setBucket(n, k, v)
	}
	s := slot(h, level)
	old := n.child(s)
	kid, delta := setAt(old, h, level+1, k, v)
	if kid == old && delta == 0 && v == nil {
		return n, 0 // deleting a missing key
	}
	var bitmap uint32
	var kids []*node[K, V]
	if n != nil {
		bitmap, kids = n.bitmap, n.kids
	}
	i := bits.OnesCount32(bitmap & (1<<s - 1))
	switch {
	case old == nil && kid == nil:
		return n, delta
	case old == nil:
		next := make([]*node[K, V], len(kids)+1)
		copy(next, kids[:i])
		next[i] = kid
		copy(next[i+1:], kids[i:])
		return &node[K, V]{bitmap: bitmap | 1<<s, kids: next}, delta
	case kid == nil:
		if len(kids) == 1 {
			return nil, delta
		}
		next := make([]*node[K, V], len(kids)-1)
		copy(next, kids[:i])
		copy(next[i:], kids[i+1:])
		return &node[K, V]{bitmap: bitmap &^ (1 << s), kids: next}, delta
	}
	next := make([]*node[K, V], len(kids))
	copy(next, kids)
	next[i] = kid
	return &node[K, V]{bitmap: bitmap, kids: next}, delta
}

func setBucket[K comparable, V any](n *node[K, V], k K, v *V) (*node[K, V], int) {
	var bucket []kv[K, V]
	if n != nil {
		bucket = n.bucket
	}
	for i := range bucket {
		if bucket[i].k != k {
			continue
		}
		if v == nil {
			if len(bucket) == 1 {
				return nil, -1
			}
			next := make([]kv[K, V], 0, len(bucket)-1)
			next = append(next, bucket[:i]...)
			next = append(next, bucket[i+1:]...)
			return &node[K, V]{bucket: next}, -1
		}
		next := make([]kv[K, V], len(bucket))
		copy(next, bucket)
		next[i].v = *v
		return &node[K, V]{bucket: next}, 0
	}
	if v == nil {
		return n, 0
	}
	next := make([]kv[K, V], len(bucket), len(bucket)+1)
	copy(next, bucket)
	next = append(next, kv[K, V]{k, *v})
	return &node[K, V]{bucket: next}, 1
}

// String hashes s into h (start from Offset): a helper for hash functions
// of keys made of strings, without allocation. It takes eight bytes at a
// time (then four, then one, as FNV-1a), each word mixed by a multiply and
// a rotation; Finalize spreads the result.
func String(h uint64, s string) uint64 {
	for ; len(s) >= 8; s = s[8:] {
		h = mix(h, uint64(s[0])|uint64(s[1])<<8|uint64(s[2])<<16|uint64(s[3])<<24|
			uint64(s[4])<<32|uint64(s[5])<<40|uint64(s[6])<<48|uint64(s[7])<<56)
	}
	if len(s) >= 4 {
		h = mix(h, uint64(s[0])|uint64(s[1])<<8|uint64(s[2])<<16|uint64(s[3])<<24)
		s = s[4:]
	}
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}

// mix folds the word w into h.
func mix(h, w uint64) uint64 { return bits.RotateLeft64((h^w)*0x9e3779b97f4a7c15, 29) }

// Byte hashes one byte into h.
func Byte(h uint64, b byte) uint64 {
	h ^= uint64(b)
	return h * prime
}

// Offset is the FNV-1a offset basis, the starting value for String.
const Offset uint64 = 14695981039346656037

const prime = 1099511628211

// Finalize mixes the bits of an FNV hash so that its low bits, which the
// trie uses first, depend on every input byte.
func Finalize(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
