package servicemap

import "math/bits"

// The snapshot's services live in a persistent hash trie: a fixed-depth,
// 32-way tree indexed by a hash of "namespace/name". Changing a service copies
// only the nodes on its path (trieLevels small arrays), so successive
// snapshots share every unchanged subtree and taking one costs
// O(changes), not O(cluster). Diff compares two tries and skips shared
// subtrees by pointer, which makes it O(changes) as well.

const (
	trieBits   = 5
	trieLevels = 4 // 2^20 buckets; buckets hold the rare hash collisions
)

// entry is one service's ports in a snapshot.
type entry struct {
	key   string // "namespace/name"
	ports []*ServicePort
}

type trieNode struct {
	bitmap uint32
	kids   []*trieNode // populated slots, in bit order (inner levels)
	bucket []*entry    // sorted by key (last level)
}

func hashKey(key string) uint32 {
	// FNV-1a: deterministic across processes, no allocation.
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h
}

func slot(h uint32, level int) uint32 { return (h >> (level * trieBits)) & 31 }

func (n *trieNode) child(s uint32) *trieNode {
	if n == nil || n.bitmap&(1<<s) == 0 {
		return nil
	}
	return n.kids[bits.OnesCount32(n.bitmap&(1<<s-1))]
}

func trieGet(n *trieNode, key string) *entry {
	h := hashKey(key)
	for level := 0; level < trieLevels && n != nil; level++ {
		n = n.child(slot(h, level))
	}
	if n == nil {
		return nil
	}
	for _, e := range n.bucket {
		if e.key == key {
			return e
		}
	}
	return nil
}

// trieSet returns a new root in which key maps to e (or is absent, when e is
// nil). The old root is unchanged.
func trieSet(root *trieNode, key string, e *entry) *trieNode {
	return setAt(root, hashKey(key), 0, key, e)
}

func setAt(n *trieNode, h uint32, level int, key string, e *entry) *trieNode {
	if level == trieLevels {
		return setBucket(n, key, e)
	}
	s := slot(h, level)
	old := n.child(s)
	kid := setAt(old, h, level+1, key, e)
	if kid == old {
		return n
	}
	var bitmap uint32
	var kids []*trieNode
	if n != nil {
		bitmap, kids = n.bitmap, n.kids
	}
	i := bits.OnesCount32(bitmap & (1<<s - 1))
	switch {
	case old == nil: // insert
		next := make([]*trieNode, len(kids)+1)
		copy(next, kids[:i])
		next[i] = kid
		copy(next[i+1:], kids[i:])
		return &trieNode{bitmap: bitmap | 1<<s, kids: next}
	case kid == nil: // remove
		if len(kids) == 1 {
			return nil
		}
		next := make([]*trieNode, len(kids)-1)
		copy(next, kids[:i])
		copy(next[i:], kids[i+1:])
		return &trieNode{bitmap: bitmap &^ (1 << s), kids: next}
	default: // replace
		next := make([]*trieNode, len(kids))
		copy(next, kids)
		next[i] = kid
		return &trieNode{bitmap: bitmap, kids: next}
	}
}

func setBucket(n *trieNode, key string, e *entry) *trieNode {
	var bucket []*entry
	if n != nil {
		bucket = n.bucket
	}
	next := make([]*entry, 0, len(bucket)+1)
	done := false
	for _, old := range bucket {
		switch {
		case old.key == key:
			done = true
			if e != nil {
				next = append(next, e)
			}
			continue
		case !done && e != nil && key < old.key:
			next = append(next, e)
			done = true
		}
		next = append(next, old)
	}
	if !done && e != nil {
		next = append(next, e)
	}
	if len(next) == 0 {
		return nil
	}
	return &trieNode{bucket: next}
}

// trieWalk calls f for every entry.
func trieWalk(n *trieNode, level int, f func(*entry)) {
	if n == nil {
		return
	}
	if level == trieLevels {
		for _, e := range n.bucket {
			f(e)
		}
		return
	}
	for _, k := range n.kids {
		trieWalk(k, level+1, f)
	}
}

// trieDiff calls f(old, new) for every key whose entry differs between a and
// b (either may be nil), skipping subtrees the two share.
func trieDiff(a, b *trieNode, level int, f func(old, new *entry)) {
	if a == b {
		return
	}
	if level == trieLevels {
		diffBuckets(a, b, f)
		return
	}
	var ab, bb uint32
	if a != nil {
		ab = a.bitmap
	}
	if b != nil {
		bb = b.bitmap
	}
	for all := ab | bb; all != 0; all &= all - 1 {
		s := uint32(bits.TrailingZeros32(all))
		trieDiff(a.child(s), b.child(s), level+1, f)
	}
}

func diffBuckets(a, b *trieNode, f func(old, new *entry)) {
	var ea, eb []*entry
	if a != nil {
		ea = a.bucket
	}
	if b != nil {
		eb = b.bucket
	}
	i, j := 0, 0
	for i < len(ea) || j < len(eb) {
		switch {
		case j == len(eb) || (i < len(ea) && ea[i].key < eb[j].key):
			f(ea[i], nil)
			i++
		case i == len(ea) || eb[j].key < ea[i].key:
			f(nil, eb[j])
			j++
		default:
			if ea[i] != eb[j] {
				f(ea[i], eb[j])
			}
			i++
			j++
		}
	}
}
