package iptablesfake_test

import (
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/backends/iptables/iptablesfake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// An iptables.Backend synced against the fake: the service's rules as
// `iptables -t nat -S` shows them, then the restore input of an
// incremental sync that gives the service a second endpoint.
func Example() {
	fake := iptablesfake.New(iptables.FlavourNFT)
	b, err := iptables.New(iptables.Spec{}, iptables.Options{Exec: fake})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	ports := []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}
	slicePorts := []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)}
	tr.OnServiceAdd(servicemaptest.Service("default", "web", "10.96.0.10", ports))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "web", "web-1", slicePorts, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.244.1.5", "node-a"),
	}))
	s1 := tr.Snapshot()
	if err := b.Sync(ctx, nil, s1); err != nil {
		panic(err)
	}
	out, err := fake.Run(ctx, "iptables", []string{"-t", "nat", "-S"}, nil)
	if err != nil {
		panic(err)
	}
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "default/web") {
			fmt.Print(line)
		}
	}
	fake.TakeCalls()

	tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("default", "web", "web-1", slicePorts, []servicemaptest.Endpoint{
		servicemaptest.Ready("10.244.1.5", "node-a"), servicemaptest.Ready("10.244.2.5", "node-b"),
	}))
	if err := b.Sync(ctx, s1, tr.Snapshot()); err != nil {
		panic(err)
	}
	for _, c := range fake.TakeCalls() {
		if strings.HasSuffix(c.Command[0], "-restore") {
			fmt.Printf("\n%s\n%s", c, c.Stdin)
		}
	}
	// Output:
	// -A LBKIT-SEP-PV2DHELODIM4BRTK -m comment --comment default/web:http -s 10.244.1.5/32 -j LBKIT-MARK-MASQ
	// -A LBKIT-SEP-PV2DHELODIM4BRTK -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080
	// -A LBKIT-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10/32 --dport 80 -j LBKIT-SVC-OSC5D42RU6KJHZT7
	// -A LBKIT-SVC-OSC5D42RU6KJHZT7 -m comment --comment "default/web:http -> 10.244.1.5:8080" -j LBKIT-SEP-PV2DHELODIM4BRTK
	//
	// iptables-nft-restore -w 5 --noflush
	// *nat
	// :LBKIT-SEP-PV2DHELODIM4BRTK - [0:0]
	// :LBKIT-SEP-TW574JV3ZMDZLA3E - [0:0]
	// :LBKIT-SVC-OSC5D42RU6KJHZT7 - [0:0]
	// -A LBKIT-SEP-PV2DHELODIM4BRTK -m comment --comment default/web:http -s 10.244.1.5/32 -j LBKIT-MARK-MASQ
	// -A LBKIT-SEP-PV2DHELODIM4BRTK -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080
	// -A LBKIT-SEP-TW574JV3ZMDZLA3E -m comment --comment default/web:http -s 10.244.2.5/32 -j LBKIT-MARK-MASQ
	// -A LBKIT-SEP-TW574JV3ZMDZLA3E -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.2.5:8080
	// -A LBKIT-SVC-OSC5D42RU6KJHZT7 -m comment --comment "default/web:http -> 10.244.1.5:8080" -m statistic --mode random --probability 0.5000000000 -j LBKIT-SEP-PV2DHELODIM4BRTK
	// -A LBKIT-SVC-OSC5D42RU6KJHZT7 -m comment --comment "default/web:http -> 10.244.2.5:8080" -j LBKIT-SEP-TW574JV3ZMDZLA3E
	// COMMIT
}
