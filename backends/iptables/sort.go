package iptables

import (
	"cmp"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
)

// chainKey is one chain of a chainSet. For an own chain, comparing keys
// compares names: k0 holds the kind's rank (bits 60-62) and the hash's
// first 12 characters, 5 bits each; k1 the last 4 (bits 32-51) and, in its
// low 32 bits, the chain's index in the set.
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

// chainInfo says where an own chain comes from: chain i of port owner.
// For a SEP chain it also holds the endpoint: the chains are written
// sorted by name, so one port's chains are far apart, and reading the
// endpoint from the port would likely miss the cache every time. It holds
// no pointer, so the garbage collector need not scan it.
type chainInfo struct {
	owner, i  uint32
	addr      [16]byte
	port      uint16
	v4, zoned bool
}

// endpoint returns the endpoint of a SEP chain.
func (s *chainSet) endpoint(c *chainInfo) netip.AddrPort {
	switch {
	case c.zoned: // never from an EndpointSlice; read it where it is
		pr := s.own[c.owner]
		return pr.reach[int(c.i)-pr.sep0].Addr
	case c.v4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(c.addr[12:])), c.port)
	default:
		return netip.AddrPortFrom(netip.AddrFrom16(c.addr), c.port)
	}
}

// chainSet lists chains sorted by name: the own chains of ports, fixed
// chains and others that are only declared (dispatch chains, stale ones).
type chainSet struct {
	keys   []chainKey // sorted; index < len(infos): own chain, then fx, then others
	infos  []chainInfo
	own    []*portRules
	fx     []fixedChain
	others []string
}

// newChainSet sorts the chains. Own chain names are a kind and a uniformly
// distributed hash, so a counting sort on the kind and the hash's first
// characters leaves buckets of a few chains each.
func (o *Options) newChainSet(own []*portRules, fx []fixedChain, others []string) *chainSet {
	s := &chainSet{own: own, fx: fx, others: others}
	n := 0
	for _, pr := range own {
		n += len(pr.chains)
	}
	s.infos = make([]chainInfo, 0, n)
	keys := make([]chainKey, 0, n)
	for owner, pr := range own {
		for i, c := range pr.chains {
			h := c.name[len(c.name)-hashLen:]
			k0 := kindRank[c.kind] << 60
			for j := range 12 {
				k0 |= uint64(hashRank[h[j]]) << (55 - 5*j)
			}
			var k1 uint64
			for j := 12; j < hashLen; j++ {
				k1 |= uint64(hashRank[h[j]]) << (32 + 5*(hashLen-1-j))
			}
			keys = append(keys, chainKey{k0, k1 | uint64(len(s.infos))})
			info := chainInfo{owner: uint32(owner), i: uint32(i)}
			if c.kind == chainSEP {
				ep := pr.reach[i-pr.sep0].Addr
				info.addr, info.port = ep.Addr().As16(), ep.Port()
				info.v4, info.zoned = ep.Addr().Is4(), ep.Addr().Zone() != ""
			}
			s.infos = append(s.infos, info)
		}
	}
	if len(keys) < 256 {
		slices.SortFunc(keys, compareKeys)
	} else {
		keys = bucketSort(keys)
	}

	// Merge in the fixed and other chains, by name.
	var extra []int
	for i := range len(fx) + len(others) {
		extra = append(extra, len(s.infos)+i)
	}
	nameOf := func(i int) string {
		if i < len(s.infos)+len(fx) {
			return fx[i-len(s.infos)].name
		}
		return others[i-len(s.infos)-len(fx)]
	}
	slices.SortFunc(extra, func(a, b int) int { return strings.Compare(nameOf(a), nameOf(b)) })
	extra = slices.CompactFunc(extra, func(a, b int) bool { return nameOf(a) == nameOf(b) })
	s.keys = make([]chainKey, 0, len(keys)+len(extra))
	var buf [64]byte
	for _, e := range extra {
		name := nameOf(e)
		at, found := slices.BinarySearchFunc(keys, name, func(k chainKey, name string) int {
			return strings.Compare(string(o.appendKeyName(buf[:0], k)), name)
		})
		s.keys = append(s.keys, keys[:at]...)
		if !found {
			s.keys = append(s.keys, chainKey{k1: uint64(e)})
		}
		keys = keys[at:]
	}
	s.keys = append(s.keys, keys...)
	return s
}

// appendName appends the name of chain k.
func (o *Options) appendName(dst []byte, s *chainSet, k chainKey) []byte {
	i := k.index()
	switch {
	case i < len(s.infos):
		return o.appendKeyName(dst, k)
	case i < len(s.infos)+len(s.fx):
		return append(dst, s.fx[i-len(s.infos)].name...)
	default:
		return append(dst, s.others[i-len(s.infos)-len(s.fx)]...)
	}
}

// appendKeyName appends the name of the own chain k, from its key.
func (o *Options) appendKeyName(dst []byte, k chainKey) []byte {
	dst = append(dst, o.Prefix...)
	dst = append(dst, kindNames[k.kind()]...)
	for j := range 12 {
		dst = append(dst, rankHash[(k.k0>>(55-5*j))&31])
	}
	for j := 12; j < hashLen; j++ {
		dst = append(dst, rankHash[(k.k1>>(32+5*(hashLen-1-j)))&31])
	}
	return dst
}

// bucketSort sorts keys: a stable counting sort on the top bits, about one
// bucket per key, then an insertion sort of each bucket.
func bucketSort(keys []chainKey) []chainKey {
	shift := 63 - min(bits.Len(uint(len(keys))), 18)
	counts := make([]int32, (1<<(63-shift))+1)
	for _, k := range keys {
		counts[k.k0>>shift+1]++
	}
	for b := 1; b < len(counts); b++ {
		counts[b] += counts[b-1]
	}
	out := make([]chainKey, len(keys))
	for _, k := range keys {
		b := k.k0 >> shift
		out[counts[b]] = k
		counts[b]++
	}
	// counts[b] is now where bucket b ends.
	start := int32(0)
	for b := 0; b+1 < len(counts); b++ {
		bucket := out[start:counts[b]]
		start = counts[b]
		for i := 1; i < len(bucket); i++ {
			for j := i; j > 0 && compareKeys(bucket[j], bucket[j-1]) < 0; j-- {
				bucket[j], bucket[j-1] = bucket[j-1], bucket[j]
			}
		}
	}
	return out
}
