package servicemaptest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/lbkit/lbkit/servicemap"
)

// Harness drives a servicemap.Tracker from client-go informers over a fake
// clientset, the way a proxy's informers would over an API server: a test
// changes objects through Client and waits for the snapshot it expects with
// WaitFor.
type Harness struct {
	// Client is the fake clientset the informers watch.
	Client *fake.Clientset
	// Tracker is fed by the informers.
	Tracker *servicemap.Tracker

	changes     <-chan struct{}
	unsubscribe func()
}

// StartHarness starts informers for Services, EndpointSlices and Nodes on
// client, feeding a new Tracker made with opts, and returns once the
// Tracker's handlers have seen the initial listing and every informer's
// watch is in place. The last part matters with a fake clientset: an
// object written after an informer lists but before its watch starts may
// never reach the informer. The informers stop when ctx ends.
//
// The Harness hooks client's watches (a watch reactor) to know when they
// start: give it a clientset no other harness uses.
func StartHarness(ctx context.Context, client *fake.Clientset, opts servicemap.Options) (*Harness, error) {
	var mu sync.Mutex
	watching := map[string]bool{}
	started := make(chan struct{}, 1)
	client.PrependWatchReactor("*", func(action clienttesting.Action) (bool, watch.Interface, error) {
		var lo metav1.ListOptions
		if wa, ok := action.(clienttesting.WatchActionImpl); ok {
			lo = wa.ListOptions
		}
		// Start the watch here, then say so: once WaitFor's caller hears
		// of it, no write can fall between list and watch.
		w, err := client.Tracker().Watch(action.GetResource(), action.GetNamespace(), lo)
		if err != nil {
			return true, nil, err
		}
		mu.Lock()
		watching[action.GetResource().Resource] = true
		mu.Unlock()
		select {
		case started <- struct{}{}:
		default:
		}
		return true, w, nil
	})

	tr := servicemap.NewTracker(opts)
	changes, unsubscribe := tr.Subscribe()
	h := &Harness{Client: client, Tracker: tr, changes: changes, unsubscribe: unsubscribe}
	factory := informers.NewSharedInformerFactory(client, 0)
	var synced []cache.InformerSynced
	for inf, handler := range map[cache.SharedIndexInformer]cache.ResourceEventHandler{
		factory.Core().V1().Services().Informer():            tr.ServiceHandler(),
		factory.Discovery().V1().EndpointSlices().Informer(): tr.EndpointSliceHandler(),
		factory.Core().V1().Nodes().Informer():               tr.NodeHandler(),
	} {
		reg, err := inf.AddEventHandler(handler)
		if err != nil {
			unsubscribe()
			return nil, err
		}
		synced = append(synced, reg.HasSynced)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		unsubscribe()
		return nil, fmt.Errorf("servicemaptest: informers did not sync: %w", ctx.Err())
	}
	for {
		mu.Lock()
		all := watching["services"] && watching["endpointslices"] && watching["nodes"]
		mu.Unlock()
		if all {
			return h, nil
		}
		select {
		case <-started:
		case <-ctx.Done():
			unsubscribe()
			return nil, fmt.Errorf("servicemaptest: watches did not start: %w", ctx.Err())
		}
	}
}

// ErrClosed is returned by WaitFor after Close.
var ErrClosed = errors.New("servicemaptest: harness closed")

// WaitFor returns the first snapshot for which cond is true: the current
// one, or one after the changes that follow. It returns ctx's error if
// that comes first.
func (h *Harness) WaitFor(ctx context.Context, cond func(*servicemap.Snapshot) bool) (*servicemap.Snapshot, error) {
	for {
		if s := h.Tracker.Snapshot(); cond(s) {
			return s, nil
		}
		select {
		case _, ok := <-h.changes:
			if !ok {
				return nil, ErrClosed
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close ends the Harness's subscription to its Tracker (the informers end
// with the context given to StartHarness).
func (h *Harness) Close() { h.unsubscribe() }
