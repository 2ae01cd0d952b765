package nftables_test

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/lbkit/lbkit/internal/golden"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemaptest"
)

var (
	tcp80   = ports(servicemaptest.Port("http", 80, v1.ProtocolTCP))
	tcp8080 = slicePorts(servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP))
	// oneTable renders what a Backend on a knftables fake (one table) holds.
	oneTable = nftables.Spec{Shards: 1}
	podCIDRs = nftables.Spec{ClusterCIDRs: mustPrefixes("10.244.0.0/16", "fd00:10:244::/56"), Shards: 1}
)

// goldenCases are the snapshots whose rendering is checked against
// testdata/<name>.golden.
var goldenCases = []struct {
	name   string
	family v1.IPFamily
	opts   nftables.Spec
	objs   objects
}{
	{
		name: "clusterip-three-endpoints",
		opts: podCIDRs,
		objs: objects{
			services: []*v1.Service{servicemaptest.Service("default", "web", "10.96.0.10", tcp80)},
			slices: []*discoveryv1.EndpointSlice{servicemaptest.Slice("default", "web", "web-1", tcp8080, eps(
				servicemaptest.Ready("10.244.1.5", thisNode),
				servicemaptest.Ready("10.244.2.5", "node-b"),
				servicemaptest.Ready("10.244.3.5", "node-c"),
			))},
		},
	},
	{
		// Rejected on every address, node port included.
		name: "no-endpoints",
		opts: podCIDRs,
		objs: objects{
			services: []*v1.Service{servicemaptest.Service("default", "empty", "10.96.0.11", tcp80,
				nodePort(80, 30080), servicemaptest.ExternalIPs("192.0.2.10"))},
			slices: []*discoveryv1.EndpointSlice{servicemaptest.Slice("default", "empty", "empty-1", tcp8080, eps(
				servicemaptest.NotReady("10.244.1.6", thisNode),
			))},
		},
	},
	{
		// No ready endpoint: the serving, terminating ones are used.
		name: "only-terminating",
		opts: oneTable,
		objs: objects{
			services: []*v1.Service{servicemaptest.Service("default", "draining", "10.96.0.12", tcp80)},
			slices: []*discoveryv1.EndpointSlice{servicemaptest.Slice("default", "draining", "draining-1", tcp8080, eps(
				servicemaptest.Terminating("10.244.2.7", "node-b"),
				servicemaptest.Terminating("10.244.3.7", "node-c"),
			))},
		},
	},
	{
		// local-eps has an endpoint here; remote-only does not, so its
		// external traffic is dropped unless it short-circuits.
		name: "nodeport-etp-local",
		opts: podCIDRs,
		objs: objects{
			services: []*v1.Service{
				servicemaptest.Service("default", "local-eps", "10.96.0.13", tcp80, nodePort(80, 30013), servicemaptest.ExternalLocal(0)),
				servicemaptest.Service("default", "remote-only", "10.96.0.14", tcp80, nodePort(80, 30014), servicemaptest.ExternalLocal(0)),
			},
			slices: []*discoveryv1.EndpointSlice{
				servicemaptest.Slice("default", "local-eps", "local-eps-1", tcp8080, eps(
					servicemaptest.Ready("10.244.1.13", thisNode),
					servicemaptest.Ready("10.244.2.13", "node-b"),
				)),
				servicemaptest.Slice("default", "remote-only", "remote-only-1", tcp8080, eps(
					servicemaptest.Ready("10.244.2.14", "node-b"),
				)),
			},
		},
	},
	{
		name: "loadbalancer-ranges-healthcheck-affinity",
		opts: nftables.Spec{
			Shards:       1,
			ClusterCIDRs: mustPrefixes("10.244.0.0/16"),
			NodeIPs:      []netip.Addr{netip.MustParseAddr("192.168.0.10")},
		},
		objs: objects{
			services: []*v1.Service{servicemaptest.Service("shop", "front", "10.96.0.15",
				ports(servicemaptest.Port("https", 443, v1.ProtocolTCP)),
				servicemaptest.LoadBalancer("203.0.113.7"), nodePort(443, 30443), servicemaptest.ExternalLocal(32000), servicemaptest.ClientIP(600),
				servicemaptest.SourceRanges("192.168.0.0/16", "192.168.5.0/24", "198.51.100.0/24"))},
			slices: []*discoveryv1.EndpointSlice{servicemaptest.Slice("shop", "front", "front-1",
				slicePorts(servicemaptest.SlicePort("https", 8443, v1.ProtocolTCP)), eps(
					servicemaptest.Ready("10.244.1.15", thisNode),
					servicemaptest.Ready("10.244.2.15", "node-b"),
				))},
		},
	},
	{
		// with-local goes to its local endpoint only; without-local drops
		// cluster-IP traffic (it has endpoints, just not here).
		name: "itp-local",
		opts: podCIDRs,
		objs: objects{
			services: []*v1.Service{
				servicemaptest.Service("kube-system", "with-local", "10.96.0.16", tcp80, servicemaptest.InternalLocal),
				servicemaptest.Service("kube-system", "without-local", "10.96.0.17", tcp80, servicemaptest.InternalLocal),
			},
			slices: []*discoveryv1.EndpointSlice{
				servicemaptest.Slice("kube-system", "with-local", "with-local-1", tcp8080, eps(
					servicemaptest.Ready("10.244.1.16", thisNode),
					servicemaptest.Ready("10.244.2.16", "node-b"),
				)),
				servicemaptest.Slice("kube-system", "without-local", "without-local-1", tcp8080, eps(
					servicemaptest.Ready("10.244.2.17", "node-b"),
				)),
			},
		},
	},
	{
		name: "udp-and-tcp-same-port",
		opts: oneTable,
		objs: objects{
			services: []*v1.Service{servicemaptest.Service("kube-system", "dns", "10.96.0.53", ports(
				servicemaptest.Port("dns", 53, v1.ProtocolUDP),
				servicemaptest.Port("dns-tcp", 53, v1.ProtocolTCP),
			))},
			slices: []*discoveryv1.EndpointSlice{servicemaptest.Slice("kube-system", "dns", "dns-1", slicePorts(
				servicemaptest.SlicePort("dns", 53, v1.ProtocolUDP),
				servicemaptest.SlicePort("dns-tcp", 53, v1.ProtocolTCP),
			), eps(
				servicemaptest.Ready("10.244.1.53", thisNode),
				servicemaptest.Ready("10.244.2.53", "node-b"),
			))},
		},
	},
	{
		// masqueradeAll: the cluster IP's mark rule has no source test.
		name: "masquerade-all",
		opts: nftables.Spec{ClusterCIDRs: mustPrefixes("10.244.0.0/16"), MasqueradeAll: true, Shards: 1},
		objs: objects{
			services: []*v1.Service{servicemaptest.Service("default", "masq", "10.96.0.30", tcp80)},
			slices: []*discoveryv1.EndpointSlice{servicemaptest.Slice("default", "masq", "masq-1", tcp8080, eps(
				servicemaptest.Ready("10.244.1.30", thisNode),
				servicemaptest.Ready("10.244.2.30", "node-b"),
			))},
		},
	},
	{
		name:   "ipv6",
		family: v1.IPv6Protocol,
		opts: nftables.Spec{
			Shards:            1,
			ClusterCIDRs:      mustPrefixes("10.244.0.0/16", "fd00:10:244::/56"),
			NodePortAddresses: mustPrefixes("2001:db8::/64", "::1/128"),
		},
		objs: objects{
			services: []*v1.Service{servicemaptest.Service("default", "web6", "fd00:10:96::10", tcp80,
				servicemaptest.LoadBalancer("2001:db8::7"), nodePort(80, 30080))},
			slices: []*discoveryv1.EndpointSlice{servicemaptest.Slice("default", "web6", "web6-1", tcp8080, eps(
				servicemaptest.Ready("fd00:10:244:1::5", thisNode),
				servicemaptest.Ready("fd00:10:244:2::5", "node-b"),
			))},
		},
	},
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			family := tc.family
			if family == "" {
				family = v1.IPv4Protocol
			}
			got := nftables.Render(tc.objs.snapshot(t, family), tc.opts)
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), got)
		})
	}
}

// TestRenderDeterministic renders the same snapshot built from objects
// added in two orders.
func TestRenderDeterministic(t *testing.T) {
	o := cluster(50, 3)
	a := nftables.Render(o.snapshot(t, v1.IPv4Protocol), podCIDRs)
	rev := objects{}
	for i := len(o.services) - 1; i >= 0; i-- {
		rev.services = append(rev.services, o.services[i])
		rev.slices = append(rev.slices, o.slices[i])
	}
	b := nftables.Render(rev.snapshot(t, v1.IPv4Protocol), podCIDRs)
	if a != b {
		t.Errorf("Render depends on event order:\n%s", cmp.Diff(a, b))
	}
}
