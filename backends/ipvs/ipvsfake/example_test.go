//go:build linux

package ipvsfake_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/backends/ipvs/ipvsfake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// An ipvs.Backend synced against the fakes: the table it programs, the
// addresses it binds, and what the next sync changes when an endpoint
// goes.
func Example() {
	fake := ipvsfake.NewIPVS()
	host := ipvsfake.NewHost(netip.MustParseAddr("192.168.0.10"))
	b, err := ipvs.New(ipvs.Spec{}, ipvs.Options{
		IPVS: fake, Host: host,
		NFT: knftables.NewFake(knftables.IPv4Family, ipvs.DefaultTable),
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	ports := []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}
	slicePorts := []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)}
	tr.OnServiceAdd(servicemaptest.Service("default", "web", "10.96.0.10", ports))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "web", "web-1", slicePorts, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.244.1.5", "node-a"), servicemaptest.Ready("10.244.2.5", "node-b"),
	}))
	s1 := tr.Snapshot()
	if err := b.Sync(ctx, nil, s1); err != nil {
		panic(err)
	}
	fmt.Print(fake.Dump())
	fmt.Println("bound:", host.Bound(ipvs.DefaultInterface))
	fake.TakeCalls()

	tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("default", "web", "web-1", slicePorts, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.244.1.5", "node-a"),
	}))
	s2 := tr.Snapshot()
	if err := b.Sync(ctx, s1, s2); err != nil {
		panic(err)
	}
	fmt.Println("calls:", fake.TakeCalls())

	// A kernel refusal comes back from Sync.
	fake.FailNext("add 10.96.0.11:80/TCP", nil)
	tr.OnServiceAdd(servicemaptest.Service("default", "api", "10.96.0.11", ports))
	err = b.Sync(ctx, s2, tr.Snapshot())
	fmt.Println("refused:", errors.Is(err, backends.ErrApply), errors.Is(err, ipvsfake.ErrInjected))
	// Output:
	// -A -t 10.96.0.10:80 -s rr
	// -a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1
	// -a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 1
	// bound: [10.96.0.10]
	// calls: [delete 10.96.0.10:80/TCP -> 10.244.2.5:8080]
	// refused: true true
}
