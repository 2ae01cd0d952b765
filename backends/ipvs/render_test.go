package ipvs_test

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/internal/golden"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

var node = []netip.Addr{netip.MustParseAddr(nodeIP), netip.MustParseAddr("fd00::10")}

// renderCases are checked against testdata/render-<name>.golden.
var renderCases = []struct {
	name   string
	family v1.IPFamily
	spec   ipvs.Spec
	objs   []any
}{
	{
		name: "clusterip-three-endpoints",
		objs: []any{
			servicemaptest.Service("default", "web", "10.96.0.10", tcp80),
			servicemaptest.Slice("default", "web", "web-1", tcp8080, eps(
				servicemaptest.Ready("10.244.1.5", thisNode), servicemaptest.Ready("10.244.2.5", "node-b"),
				servicemaptest.Ready("10.244.3.5", "node-c"), servicemaptest.NotReady("10.244.4.5", "node-d"))),
		},
	},
	{
		// Only the serving, terminating endpoints are left: they are used.
		name: "only-terminating",
		objs: []any{
			servicemaptest.Service("default", "draining", "10.96.0.12", tcp80),
			servicemaptest.Slice("default", "draining", "draining-1", tcp8080, eps(
				servicemaptest.Terminating("10.244.2.7", "node-b"), servicemaptest.Terminating("10.244.3.7", "node-c"))),
		},
	},
	{
		// Virtual servers without real servers: the netfilter half rejects.
		name: "no-endpoints",
		spec: ipvs.Spec{NodeIPs: node},
		objs: []any{
			servicemaptest.Service("default", "empty", "10.96.0.11", tcp80, nodePort(30080), servicemaptest.ExternalIPs("192.0.2.10")),
		},
	},
	{
		// The node port and external IP use the local endpoint only; the
		// cluster IP all of them. remote-only's node port has none.
		name: "nodeport-etp-local",
		spec: ipvs.Spec{NodeIPs: node},
		objs: []any{
			servicemaptest.Service("default", "local-eps", "10.96.0.13", tcp80, nodePort(30013), servicemaptest.ExternalLocal(32000), servicemaptest.ExternalIPs("192.0.2.13")),
			servicemaptest.Service("default", "remote-only", "10.96.0.14", tcp80, nodePort(30014), servicemaptest.ExternalLocal(32001)),
			servicemaptest.Slice("default", "local-eps", "local-eps-1", tcp8080, eps(
				servicemaptest.Ready("10.244.1.13", thisNode), servicemaptest.Ready("10.244.2.13", "node-b"))),
			servicemaptest.Slice("default", "remote-only", "remote-only-1", tcp8080, eps(servicemaptest.Ready("10.244.2.14", "node-b"))),
		},
	},
	{
		// Node ports only on the node addresses inside NodePortAddresses
		// (the IPv6 prefix does not restrict IPv4), never on loopback.
		name: "nodeport-addresses",
		spec: ipvs.Spec{
			NodeIPs: []netip.Addr{netip.MustParseAddr("10.100.0.1"), netip.MustParseAddr("10.101.0.1"),
				netip.MustParseAddr("127.0.0.1")},
			NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("10.100.0.0/24"), netip.MustParsePrefix("127.0.0.0/8"),
				netip.MustParsePrefix("fd00:100::/64")},
		},
		objs: []any{
			servicemaptest.Service("default", "np", "10.96.0.17", tcp80, nodePort(30017)),
			servicemaptest.Slice("default", "np", "np-1", tcp8080, eps(servicemaptest.Ready("10.244.1.17", thisNode))),
		},
	},
	{
		name: "itp-local",
		objs: []any{
			servicemaptest.Service("kube-system", "with-local", "10.96.0.16", tcp80, servicemaptest.InternalLocal),
			servicemaptest.Slice("kube-system", "with-local", "with-local-1", tcp8080, eps(
				servicemaptest.Ready("10.244.1.16", thisNode), servicemaptest.Ready("10.244.2.16", "node-b"))),
		},
	},
	{
		name: "loadbalancer-affinity",
		spec: ipvs.Spec{NodeIPs: node},
		objs: []any{
			servicemaptest.Service("shop", "front", "10.96.0.15", []v1.ServicePort{servicemaptest.Port("https", 443, v1.ProtocolTCP)},
				servicemaptest.LoadBalancer("203.0.113.7", "203.0.113.8"), nodePort(30443), servicemaptest.ClientIP(600), servicemaptest.SourceRanges("198.51.100.0/24")),
			servicemaptest.Slice("shop", "front", "front-1", []discoveryv1.EndpointPort{servicemaptest.SlicePort("https", 8443, v1.ProtocolTCP)}, eps(
				servicemaptest.Ready("10.244.1.15", thisNode), servicemaptest.Ready("10.244.2.15", "node-b"))),
		},
	},
	{
		name: "tcp-udp-sctp-same-port",
		objs: []any{
			servicemaptest.Service("kube-system", "dns", "10.96.0.53", []v1.ServicePort{
				servicemaptest.Port("dns-tcp", 53, v1.ProtocolTCP), servicemaptest.Port("dns", 53, v1.ProtocolUDP),
				servicemaptest.Port("dns-sctp", 53, v1.ProtocolSCTP)}),
			servicemaptest.Slice("kube-system", "dns", "dns-1", []discoveryv1.EndpointPort{
				servicemaptest.SlicePort("dns-tcp", 5353, v1.ProtocolTCP), servicemaptest.SlicePort("dns", 5353, v1.ProtocolUDP),
				servicemaptest.SlicePort("dns-sctp", 5353, v1.ProtocolSCTP)}, eps(servicemaptest.Ready("10.244.1.53", thisNode))),
		},
	},
	{
		name: "scheduler-override",
		spec: ipvs.Spec{Scheduler: "wlc", SchedulerFor: func(n servicemap.ServicePortName) string {
			return map[string]string{"web": "mh", "cache": "sh"}[n.Name]
		}},
		objs: []any{
			servicemaptest.Service("default", "web", "10.96.0.10", tcp80),
			servicemaptest.Service("default", "cache", "10.96.0.11", tcp80),
			servicemaptest.Service("default", "plain", "10.96.0.12", tcp80),
		},
	},
	{
		name:   "ipv6",
		family: v1.IPv6Protocol,
		spec:   ipvs.Spec{NodeIPs: node},
		objs: []any{
			servicemaptest.Service("default", "web6", "fd00:10:96::10", tcp80, nodePort(30080)),
			servicemaptest.Slice("default", "web6", "web6-1", tcp8080, eps(
				servicemaptest.Ready("fd00:10:244:1::5", thisNode), servicemaptest.Ready("fd00:10:244:2::5", "node-b"))),
		},
	},
}

func TestRender(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			snap := snapshotOf(t, tc.family, tc.objs...)
			got := ipvs.Render(snap, tc.spec)
			if again := ipvs.Render(snap, tc.spec); again != got {
				t.Fatalf("Render is not deterministic")
			}
			checkGolden(t, "render-"+tc.name, got)
		})
	}
}

func snapshotOf(t testing.TB, family v1.IPFamily, objs ...any) *servicemap.Snapshot {
	t.Helper()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: thisNode, IPFamily: family})
	for _, o := range objs {
		switch o := o.(type) {
		case *v1.Service:
			tr.OnServiceAdd(o)
		case *discoveryv1.EndpointSlice:
			tr.OnEndpointSliceAdd(o)
		default:
			t.Fatalf("object %T", o)
		}
	}
	if w := tr.Warnings(); len(w) > 0 {
		t.Fatalf("test input has warnings: %v", w)
	}
	return tr.Snapshot()
}

func ExampleRender() {
	snap := snapshotOf(&testing.T{}, v1.IPv4Protocol,
		servicemaptest.Service("default", "web", "10.96.0.10", tcp80, servicemaptest.ClientIP(600)),
		servicemaptest.Slice("default", "web", "web-1", tcp8080, eps(
			servicemaptest.Ready("10.244.1.5", "node-a"), servicemaptest.Ready("10.244.2.5", "node-b"))))
	fmt.Print(ipvs.Render(snap, ipvs.Spec{}))
	// Output:
	// -A -t 10.96.0.10:80 -s rr -p 600
	// -a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1
	// -a -t 10.96.0.10:80 -r 10.244.2.5:8080 -m -w 1
}

// checkGolden compares got with testdata/<name>.golden; -update rewrites it.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name+".golden"), got)
}
