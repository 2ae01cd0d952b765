package iptables_test

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbkit/lbkit/internal/golden"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

var (
	http80   = []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}
	http8080 = []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)}
)

// scenarios are the snapshots the golden files cover.
func scenarios() map[string]func(tr *servicemap.Tracker) {
	return map[string]func(tr *servicemap.Tracker){
		"clusterip": func(tr *servicemap.Tracker) {
			tr.OnServiceAdd(servicemaptest.Service("default", "web", "10.96.0.10", http80))
			tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "web", "web-1", http8080, []servicemaptest.Endpoint{
				servicemaptest.Ready("10.244.1.10", "node"), servicemaptest.Ready("10.244.1.11", "other"), servicemaptest.Ready("10.244.1.12", "other"),
			}))
		},
		// Rendered with MasqueradeAll (see goldenSpec): the cluster IP's
		// masquerade rule has no source match.
		"masquerade-all": func(tr *servicemap.Tracker) {
			tr.OnServiceAdd(servicemaptest.Service("default", "masq", "10.96.0.30", http80))
			tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "masq", "masq-1", http8080, []servicemaptest.Endpoint{
				servicemaptest.Ready("10.244.1.30", "node"), servicemaptest.Ready("10.244.1.31", "other"),
			}))
		},
		"no-endpoints": func(tr *servicemap.Tracker) {
			tr.OnServiceAdd(servicemaptest.Service("default", "empty", "10.96.0.11", http80))
		},
		"terminating": func(tr *servicemap.Tracker) {
			tr.OnServiceAdd(servicemaptest.Service("default", "drain", "10.96.0.12", http80))
			tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "drain", "drain-1", http8080, []servicemaptest.Endpoint{
				servicemaptest.Terminating("10.244.1.10", "node"), servicemaptest.NotReady("10.244.1.11", "other"),
			}))
		},
		"nodeport-local": func(tr *servicemap.Tracker) {
			for _, name := range []string{"np-local", "np-remote"} {
				tr.OnServiceAdd(servicemaptest.Service("default", name, map[string]string{"np-local": "10.96.0.20", "np-remote": "10.96.0.21"}[name],
					[]v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP, NodePort: map[string]int32{"np-local": 30080, "np-remote": 30081}[name]}},
					func(s *v1.Service) {
						s.Spec.Type = v1.ServiceTypeNodePort
						s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
						s.Spec.ExternalIPs = []string{map[string]string{"np-local": "192.0.2.10", "np-remote": "192.0.2.11"}[name]}
					}))
			}
			tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "np-local", "np-local-1", http8080, []servicemaptest.Endpoint{
				servicemaptest.Ready("10.244.1.10", "node"), servicemaptest.Ready("10.244.1.11", "other"),
			}))
			tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "np-remote", "np-remote-1", http8080, []servicemaptest.Endpoint{
				servicemaptest.Ready("10.244.1.11", "other"),
			}))
		},
		"loadbalancer": func(tr *servicemap.Tracker) {
			tr.OnServiceAdd(servicemaptest.Service("shop", "front", "10.96.0.30",
				[]v1.ServicePort{{Name: "https", Port: 443, Protocol: v1.ProtocolTCP, NodePort: 31443}},
				func(s *v1.Service) {
					s.Spec.Type = v1.ServiceTypeLoadBalancer
					s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
					s.Spec.HealthCheckNodePort = 32000
					s.Spec.LoadBalancerSourceRanges = []string{"203.0.113.0/24"}
					s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
					s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: servicemaptest.Ptr[int32](600)}}
					s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "198.51.100.7"}}
				}))
			tr.OnEndpointSliceAdd(servicemaptest.Slice("shop", "front", "front-1", []discoveryv1.EndpointPort{servicemaptest.SlicePort("https", 8443, v1.ProtocolTCP)},
				[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.10", "node"), servicemaptest.Ready("10.244.1.11", "other")}))
		},
		"internal-local-udp": func(tr *servicemap.Tracker) {
			tr.OnServiceAdd(servicemaptest.Service("kube-system", "dns", "10.96.0.53",
				[]v1.ServicePort{{Name: "dns", Port: 53, Protocol: v1.ProtocolUDP}, {Name: "dns-tcp", Port: 53, Protocol: v1.ProtocolTCP}},
				func(s *v1.Service) {
					s.Spec.InternalTrafficPolicy = servicemaptest.Ptr(v1.ServiceInternalTrafficPolicyLocal)
				}))
			tr.OnEndpointSliceAdd(servicemaptest.Slice("kube-system", "dns", "dns-1",
				[]discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 53, v1.ProtocolUDP), servicemaptest.SlicePort("dns-tcp", 53, v1.ProtocolTCP)},
				[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.10", "node"), servicemaptest.Ready("10.244.1.11", "other")}))
		},
		"nodeport-addresses": func(tr *servicemap.Tracker) {
			tr.OnServiceAdd(servicemaptest.Service("default", "np", "10.96.0.40",
				[]v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP, NodePort: 30080}},
				func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort }))
			tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "np", "np-1", http8080, []servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.10", "node")}))
		},
		"ipv6": func(tr *servicemap.Tracker) {
			tr.OnServiceAdd(servicemaptest.Service("default", "web6", "fd00:96::10", http80))
			tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "web6", "web6-1", http8080, []servicemaptest.Endpoint{
				servicemaptest.Ready("fd00:244::10", "node"), servicemaptest.Ready("fd00:244::11", "other"),
			}))
		},
	}
}

func snapshotOf(name string, setup func(*servicemap.Tracker)) *servicemap.Snapshot {
	family := v1.IPv4Protocol
	if name == "ipv6" {
		family = v1.IPv6Protocol
	}
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node", IPFamily: family})
	setup(tr)
	return tr.Snapshot()
}

// goldenSpec is the spec a golden case renders with.
func goldenSpec(name string) iptables.Spec {
	spec := iptables.Spec{
		ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16"), netip.MustParsePrefix("fd00:244::/64")},
	}
	spec.MasqueradeAll = name == "masquerade-all"
	if name == "nodeport-addresses" {
		// Two prefixes, one reaching into loopback, one inside it (never
		// served), and one of the other family (ignored).
		for _, p := range []string{"10.100.0.0/24", "64.0.0.0/2", "127.0.0.1/32", "fd00:100::/64"} {
			spec.NodePortAddresses = append(spec.NodePortAddresses, netip.MustParsePrefix(p))
		}
	}
	return spec
}

func TestRenderGolden(t *testing.T) {
	for name, setup := range scenarios() {
		t.Run(name, func(t *testing.T) {
			checkGolden(t, name+".golden", iptables.Render(snapshotOf(name, setup), goldenSpec(name)))
		})
	}
}

// TestRenderNodePortAddressesOtherFamily: NodePortAddresses of the other
// family only leave this one's node ports on every local address, as in
// kube-proxy (a dual-stack proxy passes one list to both families).
func TestRenderNodePortAddressesOtherFamily(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node", IPFamily: v1.IPv6Protocol})
	tr.OnServiceAdd(servicemaptest.Service("default", "np", "fd00:96::40",
		[]v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP, NodePort: 30080}},
		func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort }))
	got := iptables.Render(tr.Snapshot(), iptables.Spec{NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("10.100.0.0/24")}})
	want := `-A LBKIT-SERVICES -m comment --comment "lbkit service nodeports; NOTE: this must be the last rule in this chain" ! -d ::1/128 -m addrtype --dst-type LOCAL -j LBKIT-NODEPORTS`
	if !strings.Contains(got, want+"\n") {
		t.Errorf("Render lacks the jump to node ports on every local address:\n%s\nin:\n%s", want, got)
	}
}

// checkGolden compares got with testdata/name (go test -update writes it).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}
