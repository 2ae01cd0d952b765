package servicemap_test

import (
	"fmt"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

func svcN(i int) *v1.Service {
	return servicemaptest.Service("ns", fmt.Sprintf("s%d", i), fmt.Sprintf("10.96.%d.%d", i/250, i%250+1), tcp80)
}

func received(ch <-chan struct{}) bool {
	select {
	case _, ok := <-ch:
		return ok
	default:
		return false
	}
}

// Every subscriber sees every change: with two readers on one Tracker, each
// is told of each of 20 updates, and the snapshot it then takes holds it.
func TestSubscribeEveryReaderSeesEveryChange(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	a, cancelA := tr.Subscribe()
	defer cancelA()
	b, cancelB := tr.Subscribe()
	defer cancelB()
	if received(a) || received(b) {
		t.Fatal("a value arrived before any change")
	}
	for i := range 20 {
		tr.OnServiceAdd(svcN(i))
		for name, ch := range map[string]<-chan struct{}{"a": a, "b": b} {
			if !received(ch) {
				t.Fatalf("subscriber %s: no value after change %d", name, i)
			}
			if got := tr.Snapshot().Len(); got != i+1 {
				t.Fatalf("subscriber %s: snapshot after change %d holds %d ports, want %d", name, i, got, i+1)
			}
		}
	}
	// Node zone changes are changes too.
	tr2 := servicemap.NewTracker(servicemap.Options{NodeName: "n"})
	c, cancelC := tr2.Subscribe()
	defer cancelC()
	tr2.OnNodeAdd(servicemaptest.Node("n", "zone-a"))
	if !received(c) {
		t.Error("no value after the node's zone changed")
	}
	// An event that changes nothing sends nothing.
	tr.OnServiceAdd(svcN(0))
	if received(a) {
		t.Error("a value arrived for an event that changed nothing")
	}
}

// A subscriber that never reads never blocks the Tracker, and the others
// still hear of changes; values coalesce in its buffer of one.
func TestSubscribeIdleReaderNeverBlocks(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	idle, cancelIdle := tr.Subscribe()
	defer cancelIdle()
	active, cancelActive := tr.Subscribe()
	defer cancelActive()
	for i := range 1000 {
		tr.OnServiceAdd(svcN(i % 250))
		tr.OnServiceDelete(svcN(i % 250))
		if !received(active) {
			t.Fatalf("active subscriber: no value after change %d", i)
		}
	}
	if n := len(idle); n != 1 {
		t.Errorf("idle subscriber's channel holds %d values, want 1 (coalesced)", n)
	}
}

// Ending a subscription closes its channel and stops its values; the other
// subscriptions go on.
func TestSubscribeCancel(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	a, cancelA := tr.Subscribe()
	b, cancelB := tr.Subscribe()
	defer cancelB()
	cancelA()
	cancelA() // a second call does nothing
	if _, ok := <-a; ok {
		t.Fatal("channel still open after cancel")
	}
	tr.OnServiceAdd(svcN(1))
	if !received(b) {
		t.Error("the remaining subscriber got no value")
	}
}

// Subscribing, cancelling and changing concurrently is safe (run with -race).
func TestSubscribeConcurrent(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				ch, cancel := tr.Subscribe()
				tr.OnServiceAdd(svcN(w*200 + i))
				if !received(ch) {
					t.Errorf("worker %d: no value after its own change %d", w, i)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	if got := tr.Snapshot().Len(); got != 800 {
		t.Errorf("snapshot holds %d ports, want 800", got)
	}
}

// Each reader of a Tracker takes its own subscription: a Runner, a
// health-check server and a metrics exporter all see every change.
func ExampleTracker_Subscribe() {
	tr := servicemap.NewTracker(servicemap.Options{})
	changes, unsubscribe := tr.Subscribe()
	defer unsubscribe()
	last := tr.Snapshot() // subscribe first, then read: nothing is missed

	tr.OnServiceAdd(servicemaptest.Service("default", "web", "10.96.0.10", tcp80))
	<-changes
	next := tr.Snapshot()
	c := servicemap.Diff(last, next)
	fmt.Println("version", next.Version(), "added", c.Added[0].Name)
	// Output:
	// version 1 added default/web:http
}
