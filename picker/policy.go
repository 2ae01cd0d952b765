package picker

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Policy is how a picker chooses among the endpoints a connection may go
// to.
type Policy uint8

const (
	// RoundRobin takes the endpoints in turn. The default.
	RoundRobin Policy = iota
	// Random takes one uniformly at random.
	Random
	// LeastRequest takes the less busy of two endpoints chosen at random
	// ("power of two choices"): busy counts the picks whose Done has not
	// been called yet.
	LeastRequest
	// Maglev hashes the request's key onto a Maglev lookup table: a key
	// keeps its endpoint while that endpoint stays, and when one of n
	// endpoints goes, about 1/n of the keys move.
	Maglev
)

func (p Policy) String() string {
	switch p {
	case RoundRobin:
		return "round-robin"
	case Random:
		return "random"
	case LeastRequest:
		return "least-request"
	case Maglev:
		return "maglev"
	}
	return "unknown"
}

// ParsePolicy returns the policy named s, as String writes it.
func ParsePolicy(s string) (Policy, bool) {
	for p := RoundRobin; p <= Maglev; p++ {
		if p.String() == s {
			return p, true
		}
	}
	return 0, false
}

// endpointState is what a picker keeps per endpoint address of a service
// port. It survives updates of the port for as long as the address stays
// in one of its lists, so in-flight counts are never lost or reset.
type endpointState struct {
	active atomic.Int64
	_      [56]byte // one cache line each: no false sharing between endpoints
}

// balancer chooses an index into a list of n endpoints, n > 0.
type balancer interface {
	choose(key uint64) int
}

// roundRobin keeps one cursor per processor (a sync.Pool is per-P), so
// that goroutines picking at once on several cores do not fight over one
// counter: each processor takes the endpoints in turn, starting from a
// random one, and together they spread evenly. One goroutine alone sees a
// strict rotation.
type roundRobin struct {
	n       uint64
	cursors sync.Pool // of *cursor
}

type cursor struct {
	next uint64
	_    [56]byte // one cache line each
}

func newRoundRobin(n int) *roundRobin {
	b := &roundRobin{n: uint64(n)}
	b.cursors.New = func() any { return &cursor{next: rand.Uint64N(b.n)} }
	return b
}

func (b *roundRobin) choose(uint64) int {
	c := b.cursors.Get().(*cursor)
	i := c.next % b.n
	c.next = i + 1
	b.cursors.Put(c)
	return int(i)
}

type random struct{ n uint64 }

func (b random) choose(uint64) int { return int(rand.Uint64N(b.n)) }

// leastRequest compares the in-flight counts of two distinct endpoints
// chosen at random; ties go to the first.
type leastRequest struct{ states []*endpointState }

func (b leastRequest) choose(uint64) int {
	n := uint64(len(b.states))
	if n == 1 {
		return 0
	}
	// Two indices from one random number: the high and low halves, each
	// scaled to its range by a multiply-shift (n is far below 2^32).
	r := rand.Uint64()
	i := (r >> 32) * n >> 32
	j := (r & 0xffffffff) * (n - 1) >> 32
	if j >= i {
		j++
	}
	// An idle first choice wins its tie without reading the second count,
	// which another core may be writing: one shared cache line less.
	ci := b.states[i].active.Load()
	if ci > 0 && b.states[j].active.Load() < ci {
		return int(j)
	}
	return int(i)
}

type maglev struct{ table []uint32 }

func (b maglev) choose(key uint64) int { return int(b.table[key%uint64(len(b.table))]) }
