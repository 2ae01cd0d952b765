package backends_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// TestRunnerChangesAndProgrammingLatency: pending changes count up while
// the loop waits out MinSyncInterval and drop to zero after the sync; the
// sync reports, for each EndpointSlice change with a trigger time, the time
// from it to the sync's end (kube-proxy's network programming duration);
// trigger times from before Run started are not ours to report.
func TestRunnerChangesAndProgrammingLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var pending, total servicemap.ChangeCounts
		var latencies []time.Duration
		m := &backends.Metrics{
			Changes: func(p, tot servicemap.ChangeCounts) { mu.Lock(); pending, total = p, tot; mu.Unlock() },
			ProgrammingLatency: func(_ string, d time.Duration) {
				mu.Lock()
				latencies = append(latencies, d)
				mu.Unlock()
			},
		}
		triggered := func(at time.Time) func(*discoveryv1.EndpointSlice) {
			return func(es *discoveryv1.EndpointSlice) {
				es.Annotations = map[string]string{servicemap.AnnotationLastChangeTriggerTime: at.Format(time.RFC3339Nano)}
			}
		}
		tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
		sp := []discoveryv1.EndpointPort{servicemaptest.SlicePort("p", 8080, v1.ProtocolTCP)}
		svc := servicemaptest.Service("ns", "a", "10.96.0.1", []v1.ServicePort{servicemaptest.Port("p", 80, v1.ProtocolTCP)})
		tr.OnServiceAdd(svc)
		// Before Run: counted as changes, not as a latency.
		tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "a", "a-1", sp, []servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.1", "node-b")},
			triggered(time.Now().Add(-time.Hour))))
		r := backends.NewRunner(tr, fake.New(fake.Options{}), backends.RunnerOptions{
			NoWaitForSync: true, MinSyncInterval: time.Second, Metrics: m,
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait()
		get := func() (servicemap.ChangeCounts, servicemap.ChangeCounts, []time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			return pending, total, append([]time.Duration(nil), latencies...)
		}
		if p, tot, l := get(); p != (servicemap.ChangeCounts{}) || tot != (servicemap.ChangeCounts{Services: 1, EndpointSlices: 1}) || len(l) != 0 {
			t.Fatalf("after the first sync: pending %+v, total %+v, latencies %v", p, tot, l)
		}

		// Two slice changes half a second apart, in one sync.
		tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("ns", "a", "a-1", sp, []servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.2", "node-b")}, triggered(time.Now())))
		synctest.Wait()
		if p, _, _ := get(); p.EndpointSlices != 1 {
			t.Errorf("pending after one change = %+v", p)
		}
		time.Sleep(500 * time.Millisecond)
		tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("ns", "a", "a-1", sp, []servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.3", "node-b")}, triggered(time.Now())))
		synctest.Wait()
		if p, _, _ := get(); p.EndpointSlices != 2 {
			t.Errorf("pending after two changes = %+v", p)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		p, tot, l := get()
		if p != (servicemap.ChangeCounts{}) || tot.EndpointSlices != 3 {
			t.Errorf("after the sync: pending %+v, total %+v", p, tot)
		}
		// MinSyncInterval holds the sync to one second after the first
		// sync: the changes at 0 s and 0.5 s are programmed at 1 s.
		if len(l) != 2 || l[0] != time.Second || l[1] != 500*time.Millisecond {
			t.Errorf("latencies = %v, want [1s 500ms]", l)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
