package picker

import (
	"net/netip"

	"github.com/lbkit/lbkit/internal/pmap"
)

// maglevSizes are primes; a table is the first at least 100 times the
// number of endpoints (the Maglev paper's rule for even shares), or the
// last.
var maglevSizes = []int{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071}

func maglevSize(n int) int {
	for _, m := range maglevSizes {
		if m >= 100*n {
			return m
		}
	}
	return maglevSizes[len(maglevSizes)-1]
}

// buildMaglev fills a lookup table for the endpoints at addrs, as in
// Maglev (Eisenbud et al., NSDI 2016): each endpoint walks its own
// permutation of the slots, given by an offset and a skip derived from its
// address, and the endpoints take turns claiming the next free slot of
// their permutation until every slot is taken. An endpoint's permutation
// depends only on its address, so removing one endpoint frees its slots
// and leaves most of the others' claims where they were.
func buildMaglev(addrs []netip.AddrPort) []uint32 {
	n := len(addrs)
	m := maglevSize(n)
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	next := make([]uint64, n)
	for i, a := range addrs {
		h1, h2 := addrHashes(a)
		offset[i] = h1 % uint64(m)
		skip[i] = h2%uint64(m-1) + 1
	}
	table := make([]uint32, m)
	taken := make([]bool, m)
	filled := 0
	for filled < m {
		for i := 0; i < n && filled < m; i++ {
			for {
				c := (offset[i] + next[i]*skip[i]) % uint64(m)
				next[i]++
				if !taken[c] {
					taken[c] = true
					table[c] = uint32(i)
					filled++
					break
				}
			}
		}
	}
	return table
}

// addrHashes returns two independent hashes of an endpoint's address and
// port.
func addrHashes(a netip.AddrPort) (uint64, uint64) {
	b := a.Addr().As16()
	h := pmap.Offset
	for _, c := range b {
		h = pmap.Byte(h, c)
	}
	h = pmap.Byte(pmap.Byte(h, byte(a.Port()>>8)), byte(a.Port()))
	return pmap.Finalize(h), pmap.Finalize(h ^ 0x9e3779b97f4a7c15)
}
