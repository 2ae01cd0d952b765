package iptables_test

import (
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// heapPeak samples the bytes of heap objects (live and not yet swept) in a
// goroutine until stop is called, which returns the largest sample. Reading
// runtime/metrics does not stop the world, so sampling every millisecond
// barely disturbs what it measures.
func heapPeak() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	peak := read()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				peak = max(peak, read())
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return max(peak, read())
	}
}

// benchServices is the number of services of the scale benchmarks: 10,000,
// or 100 with -short so that a smoke run stays fast.
func benchServices() int {
	if testing.Short() {
		return 100
	}
	return 10000
}
