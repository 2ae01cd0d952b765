package iptables

import (
	"cmp"
	"math/bits"
	"slices"
	"strings"
	"sync"
)

// chainKey stands for the name of an own chain: comparing keys compares
// names. k0 holds the kind's rank (bits 60-62) and the hash's first 12
// characters, 5 bits each; k1 the last 4 (bits 32-51) and, in its low 32
// bits, an index where the key is in a chainSet.
type chainKey struct{ k0, k1 uint64 }

func (k chainKey) index() int       { return int(uint32(k.k1)) }
func (k chainKey) kind() chainKind  { return rankKind[k.k0>>60] }
func compareKeys(a, b chainKey) int { return cmp.Or(cmp.Compare(a.k0, b.k0), cmp.Compare(a.k1, b.k1)) }

// kindRank orders the kinds as their names sort.
var kindRank = [...]uint64{chainEXT: 0, chainFW: 1, chainSEP: 2, chainSVC: 3, chainSVL: 4}

var rankKind = [...]chainKind{chainEXT, chainFW, chainSEP, chainSVC, chainSVL}

// hashRank orders base32 characters as bytes ("2" < "7" < "A" < "Z").
var hashRank, rankHash = func() (r [256]uint8, c [32]byte) {
	const sorted = "234567ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for i := range len(sorted) {
		r[sorted[i]] = uint8(i)
		c[i] = sorted[i]
	}
	return r, c
}()

// keyOf returns the key of an own chain of kind with hash.
func keyOf(kind chainKind, hash []byte) chainKey {
	k0 := kindRank[kind] << 60
	for j := range 12 {
		k0 |= uint64(hashRank[hash[j]]) << (55 - 5*j)
	}
	var k1 uint64
	for j := 12; j < hashLen; j++ {
		k1 |= uint64(hashRank[hash[j]]) << (32 + 5*(hashLen-1-j))
	}
	return chainKey{k0, k1}
}

// chainSet lists chains sorted by name: the own chains of ports, fixed
// chains and others that are only declared (dispatch chains, stale ones).
// Each is a copy of an ownChain whose key's index is, for an own chain, its
// port's in own and ports, then those of fx, then those of others. Chains
// are written in the order of their names, so one port's chains are far
// apart; what a SEP chain needs is in the copy and in ports, which is small
// enough to stay in the processor's cache, so that writing one does not
// read the port's rules.
type chainSet struct {
	chains []ownChain
	own    []*portRules
	ports  []portInfo
	fx     []fixedChain
	others []string
}

// portInfo is what writing a SEP chain reads of its port.
type portInfo struct {
	comment, match string
	affinity       bool
}

// newChainSet sorts the chains. Own chain names are a kind and a uniformly
// distributed hash, so a counting sort on the kind and the hash's first
// characters leaves buckets of a chain or two: several times faster than
// comparing names at 100,000 chains.
func (sp *Spec) newChainSet(own []*portRules, fx []fixedChain, others []string) *chainSet {
	s := &chainSet{own: own, fx: fx, others: others, ports: make([]portInfo, len(own))}
	n := 0
	for _, pr := range own {
		n += len(pr.chains)
	}
	for owner, pr := range own {
		s.ports[owner] = portInfo{comment: pr.comment, match: pr.match, affinity: pr.affinity}
	}
	extra := make([]int, len(fx)+len(others))
	for i := range extra {
		extra[i] = len(own) + i
	}
	chains := bucketSort(own, n, len(extra))

	// Merge in the fixed and other chains by name, in place from the end.
	nameOf := func(i int) string {
		if i < len(own)+len(fx) {
			return fx[i-len(own)].name
		}
		return others[i-len(own)-len(fx)]
	}
	slices.SortFunc(extra, func(a, b int) int { return strings.Compare(nameOf(a), nameOf(b)) })
	extra = slices.CompactFunc(extra, func(a, b int) bool { return nameOf(a) == nameOf(b) })
	kept, at := extra[:0], make([]int, 0, len(extra))
	var buf [64]byte
	for _, e := range extra {
		i, found := slices.BinarySearchFunc(chains, nameOf(e), func(c ownChain, name string) int {
			return strings.Compare(string(sp.appendKeyName(buf[:0], c.key)), name)
		})
		if !found { // else declared already
			kept, at = append(kept, e), append(at, i)
		}
	}
	end := len(chains)
	chains = chains[:end+len(kept)]
	for k := len(kept) - 1; k >= 0; k-- {
		copy(chains[at[k]+k+1:end+k+1], chains[at[k]:end])
		chains[at[k]+k] = ownChain{key: chainKey{k1: uint64(kept[k])}}
		end = at[k]
	}
	s.chains = chains
	return s
}

// release gives the set's memory back for the next one to use.
func (s *chainSet) release() {
	chains := s.chains[:0]
	s.chains = nil
	sortBuffers.Put(&chains)
}

// sortBuffers holds sorted chains' memory between uses: at 10,000 services
// it is megabytes, allocated and cleared on every full sync otherwise.
var sortBuffers sync.Pool

// appendName appends the name of chain k.
func (sp *Spec) appendName(dst []byte, s *chainSet, k chainKey) []byte {
	i := k.index()
	switch {
	case i < len(s.own):
		return sp.appendKeyName(dst, k)
	case i < len(s.own)+len(s.fx):
		return append(dst, s.fx[i-len(s.own)].name...)
	default:
		return append(dst, s.others[i-len(s.own)-len(s.fx)]...)
	}
}

// appendKeyName appends the name of the own chain k, from its key.
func (sp *Spec) appendKeyName(dst []byte, k chainKey) []byte {
	var h [hashLen]byte
	for j := range 12 {
		h[j] = rankHash[(k.k0>>(55-5*j))&31]
	}
	for j := 12; j < hashLen; j++ {
		h[j] = rankHash[(k.k1>>(32+5*(hashLen-1-j)))&31]
	}
	dst = append(dst, sp.Prefix...)
	dst = append(dst, kindNames[k.kind()]...)
	return append(dst, h[:]...)
}

// bucketSort returns the chains of own sorted, with room for spare more,
// their keys' index set to their port's: a stable counting sort on the kind and the hash's first
// bits, with about one bucket per chain of the most common kind, then an
// insertion sort of each bucket. n is the number of chains.
func bucketSort(own []*portRules, n, spare int) []ownChain {
	hashBits := max(min(bits.Len(uint(n))-1, 20), 0)
	shift := 60 - hashBits // below the kind's rank
	counts := make([]int32, len(kindRank)<<hashBits+1)
	for _, pr := range own {
		for i := range pr.chains {
			counts[pr.chains[i].key.k0>>shift+1]++
		}
	}
	for b := 1; b < len(counts); b++ {
		counts[b] += counts[b-1]
	}
	var out []ownChain
	if p, ok := sortBuffers.Get().(*[]ownChain); ok && cap(*p) >= n+spare {
		out = (*p)[:n]
	} else {
		out = make([]ownChain, n, n+spare)
	}
	for owner, pr := range own {
		for i := range pr.chains {
			b := pr.chains[i].key.k0 >> shift
			out[counts[b]] = pr.chains[i]
			out[counts[b]].key.k1 |= uint64(owner)
			counts[b]++
		}
	}
	// counts[b] is now where bucket b ends.
	start := int32(0)
	for b := 0; b+1 < len(counts); b++ {
		bucket := out[start:counts[b]]
		start = counts[b]
		for i := 1; i < len(bucket); i++ {
			for j := i; j > 0 && compareKeys(bucket[j].key, bucket[j-1].key) < 0; j-- {
				bucket[j], bucket[j-1] = bucket[j-1], bucket[j]
			}
		}
	}
	return out
}
