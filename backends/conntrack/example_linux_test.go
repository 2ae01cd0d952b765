//go:build linux

package conntrack_test

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/conntrack"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// WithCleanup wraps any backend: after each successful Sync the Cleaner
// deletes the UDP flows the new snapshot makes stale, counted through
// OnDeleted. The wrapper keeps the abilities of the backend it wraps (here
// incremental syncs and drift checks), so a Runner treats it as it would
// the backend itself. A snapshot without UDP ports, as here, reads no
// conntrack table at all.
func ExampleWithCleanup() {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	tr.OnServiceAdd(servicemaptest.Service("default", "web", "10.96.0.10",
		[]v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "web", "web-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.5", "node-a")}))

	deleted := 0
	cleaner, err := conntrack.New(conntrack.Options{OnDeleted: func(n int) { deleted += n }})
	if err != nil {
		fmt.Println(err)
		return
	}
	b := conntrack.WithCleanup(fake.New(fake.Options{}), cleaner)
	_, incremental := b.(backends.ChangesSyncer)
	_, drift := b.(backends.DriftChecker)
	fmt.Println("incremental:", incremental, "drift checks:", drift)

	if err := b.Sync(context.Background(), nil, tr.Snapshot()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("flows deleted:", deleted)
	// Output:
	// incremental: true drift checks: true
	// flows deleted: 0
}
