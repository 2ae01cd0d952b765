package iptables

import (
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// inParallel splits 0..n into chunks of size and hands them out to up to
// GOMAXPROCS goroutines. Each goroutine calls worker once for a function that
// handles its chunks, so it can keep buffers of its own.
func inParallel(n, size int, worker func() func(start, end int)) {
	chunks := (n + size - 1) / size
	workers := min(runtime.GOMAXPROCS(0), chunks)
	if workers <= 1 {
		if n > 0 {
			worker()(0, n)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			do := worker()
			for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
				do(c*size, min((c+1)*size, n))
			}
		})
	}
	wg.Wait()
}

// emit writes pieces 0..n-1 to w, in order; render appends piece i to dst.
// Pieces are rendered on up to GOMAXPROCS goroutines, each into a buffer of
// its own, and written in order, so what is written does not depend on how
// many. At most two pieces per goroutine are rendered and not yet written,
// which bounds the memory held however large the whole is. It stops at
// the first error from w and returns it.
func emit(w io.Writer, n int, render func(dst []byte, i int) []byte) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		buf := getBuffer()
		defer putBuffer(buf)
		for i := range n {
			buf = render(buf[:0], i)
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	}
	// Piece i goes through slot i%len(slots). A goroutine takes a token
	// before it takes a piece and the writer gives it back once that piece
	// is written, so the pieces in flight are always the next len(slots)
	// to write and never share a slot.
	slots := make([]chan []byte, 2*workers)
	tokens := make(chan struct{}, len(slots))
	free := make(chan []byte, len(slots))
	for i := range slots {
		slots[i] = make(chan []byte, 1)
		tokens <- struct{}{}
	}
	quit := make(chan struct{})
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-quit:
					return
				case <-tokens:
				}
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				var buf []byte
				select {
				case buf = <-free:
				default:
					buf = getBuffer()
				}
				slots[i%len(slots)] <- render(buf[:0], i)
			}
		})
	}
	var err error
	for i := range n {
		buf := <-slots[i%len(slots)]
		if _, err = w.Write(buf); err != nil {
			break
		}
		free <- buf
		tokens <- struct{}{}
	}
	close(quit)
	wg.Wait()
	close(free)
	for buf := range free {
		putBuffer(buf)
	}
	for _, slot := range slots {
		select {
		case buf := <-slot:
			putBuffer(buf)
		default:
		}
	}
	return err
}

// pieceBuffers keeps the buffers pieces are rendered into between emits: a
// full sync with the nft flavour emits hundreds of times.
var pieceBuffers sync.Pool

func getBuffer() []byte {
	if b, ok := pieceBuffers.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

func putBuffer(b []byte) {
	if cap(b) > 0 {
		pieceBuffers.Put(&b)
	}
}
