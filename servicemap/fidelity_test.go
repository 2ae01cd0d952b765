package servicemap_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// portView prints what a ServicePort takes from its Service, for one-line
// comparisons.
func portView(p *servicemap.ServicePort) string {
	pol := p.Policy()
	return fmt.Sprintf("cip=%s port=%d np=%d ext=%v lb=%v src=%v aff=%s itp=%s etp=%s hc=%d cluster=%v local=%v",
		p.ClusterIP, p.Port, p.NodePort, addrs(p.ExternalIPs), addrs(p.LoadBalancerIPs), addrs(p.LoadBalancerSourceRanges),
		p.Affinity, p.InternalTrafficPolicy, p.ExternalTrafficPolicy, p.HealthCheckNodePort,
		pol.UsesClusterEndpoints(), pol.UsesLocalEndpoints())
}

// TestKubeProxyFidelity feeds Services to a Tracker and expects the service
// ports kube-proxy v1.37 builds from them (pkg/proxy/serviceport.go
// newBaseServiceInfo and servicechangetracker.go serviceToServiceMap, with
// the helpers they call); each row names the kube-proxy function or test
// case it restates. cluster= and local= are UsesClusterEndpoints and
// UsesLocalEndpoints of the resulting port.
func TestKubeProxyFidelity(t *testing.T) {
	const v4, v6 = v1.IPv4Protocol, v1.IPv6Protocol
	svc := servicemaptest.Service
	port := servicemaptest.Port
	np := func(name string, p, nodePort int32) v1.ServicePort {
		sp := port(name, p, v1.ProtocolTCP)
		sp.NodePort = nodePort
		return sp
	}
	typ := func(ty v1.ServiceType) func(*v1.Service) { return func(s *v1.Service) { s.Spec.Type = ty } }
	etpLocal := func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal }
	hc := func(p int32) func(*v1.Service) { return func(s *v1.Service) { s.Spec.HealthCheckNodePort = p } }
	extIPs := func(ips ...string) func(*v1.Service) { return func(s *v1.Service) { s.Spec.ExternalIPs = ips } }
	ranges := func(r ...string) func(*v1.Service) {
		return func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = r }
	}
	ingress := func(ing ...v1.LoadBalancerIngress) func(*v1.Service) {
		return func(s *v1.Service) { s.Status.LoadBalancer.Ingress = ing }
	}
	mode := func(m v1.LoadBalancerIPMode) *v1.LoadBalancerIPMode { return &m }
	dual := func(families []v1.IPFamily, ips ...string) func(*v1.Service) {
		return func(s *v1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.IPFamilies = ips[0], ips, families }
	}
	tcp80 := []v1.ServicePort{port("http", 80, v1.ProtocolTCP)}
	const plain = "aff=None itp=Cluster etp=Cluster hc=0 cluster=true local=false"

	tests := []struct {
		name   string
		family v1.IPFamily
		svc    *v1.Service
		want   map[string]string // port name/protocol -> portView
	}{
		{
			name: "TestServiceToServiceMap cluster ip service", family: v4,
			svc: svc("ns", "a", "172.16.55.4", []v1.ServicePort{port("p1", 1234, v1.ProtocolTCP), port("p2", 1235, v1.ProtocolUDP)}),
			want: map[string]string{
				"ns/a:p1/TCP": "cip=172.16.55.4 port=1234 np=0 ext=[] lb=[] src=[] " + plain,
				"ns/a:p2/UDP": "cip=172.16.55.4 port=1235 np=0 ext=[] lb=[] src=[] " + plain,
			},
		},
		{
			name: "TestServiceToServiceMap headless and external name services", family: v4,
			svc:  svc("ns", "a", "None", tcp80),
			want: map[string]string{},
		},
		{
			name: "ShouldSkipService: ExternalName even with a cluster IP", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, typ(v1.ServiceTypeExternalName)),
			want: map[string]string{},
		},
		{
			name: "TestServiceToServiceMap nodeport service", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", []v1.ServicePort{np("p1", 80, 30080)}, typ(v1.ServiceTypeNodePort)),
			want: map[string]string{"ns/a:p1/TCP": "cip=10.0.0.1 port=80 np=30080 ext=[] lb=[] src=[] " + plain},
		},
		{
			// BaseServicePortInfo.nodePort comes from the port whatever the
			// type; ExternallyAccessible follows it.
			name: "newBaseServiceInfo: a nodePort on a ClusterIP service still counts", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", []v1.ServicePort{np("p1", 80, 30080)}, etpLocal),
			want: map[string]string{"ns/a:p1/TCP": "cip=10.0.0.1 port=80 np=30080 ext=[] lb=[] src=[] " + plain},
		},
		{
			name: "TestServiceToServiceMap load balancer service, ipMode nil, VIP, Proxy, unknown, hostname", family: v4,
			svc: svc("ns", "a", "10.0.0.1", []v1.ServicePort{np("p1", 80, 30080)}, typ(v1.ServiceTypeLoadBalancer), ingress(
				v1.LoadBalancerIngress{IP: "10.1.2.4"},
				v1.LoadBalancerIngress{IP: "10.1.2.3", IPMode: mode(v1.LoadBalancerIPModeVIP)},
				v1.LoadBalancerIngress{IP: "10.1.2.5", IPMode: mode(v1.LoadBalancerIPModeProxy)},
				v1.LoadBalancerIngress{IP: "10.1.2.6", IPMode: mode("Passthrough")},
				v1.LoadBalancerIngress{Hostname: "lb.example"},
				v1.LoadBalancerIngress{IP: "fd00::4"},
			)),
			want: map[string]string{"ns/a:p1/TCP": "cip=10.0.0.1 port=80 np=30080 ext=[] lb=[10.1.2.3 10.1.2.4] src=[] " + plain},
		},
		{
			name: "newBaseServiceInfo: load-balancer status IPs are used whatever the type", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, ingress(v1.LoadBalancerIngress{IP: "10.1.2.4"})),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[] lb=[10.1.2.4] src=[] " + plain},
		},
		{
			name: "TestServiceToServiceMap load balancer service with only local traffic policy", family: v4,
			svc: svc("ns", "a", "10.0.0.1", []v1.ServicePort{np("p1", 80, 30080)}, typ(v1.ServiceTypeLoadBalancer), etpLocal, hc(32000),
				ingress(v1.LoadBalancerIngress{IP: "10.1.2.4"})),
			want: map[string]string{"ns/a:p1/TCP": "cip=10.0.0.1 port=80 np=30080 ext=[] lb=[10.1.2.4] src=[] aff=None itp=Cluster etp=Local hc=32000 cluster=true local=true"},
		},
		{
			name: "NeedsHealthCheck: LoadBalancer with eTP Local but no healthCheckNodePort", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", []v1.ServicePort{np("p1", 80, 30080)}, typ(v1.ServiceTypeLoadBalancer), etpLocal),
			want: map[string]string{"ns/a:p1/TCP": "cip=10.0.0.1 port=80 np=30080 ext=[] lb=[] src=[] aff=None itp=Cluster etp=Local hc=0 cluster=true local=true"},
		},
		{
			name: "NeedsHealthCheck: NodePort with eTP Local has no health check port", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", []v1.ServicePort{np("p1", 80, 30080)}, typ(v1.ServiceTypeNodePort), etpLocal, hc(32000)),
			want: map[string]string{"ns/a:p1/TCP": "cip=10.0.0.1 port=80 np=30080 ext=[] lb=[] src=[] aff=None itp=Cluster etp=Local hc=0 cluster=true local=true"},
		},
		{
			name: "ExternalPolicyLocal: ClusterIP without external IPs ignores eTP Local", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, etpLocal),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[] lb=[] src=[] " + plain},
		},
		{
			name: "ExternalPolicyLocal: ClusterIP with external IPs honours eTP Local", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, etpLocal, extIPs("192.0.2.1")),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[192.0.2.1] lb=[] src=[] aff=None itp=Cluster etp=Local hc=0 cluster=true local=true"},
		},
		{
			// ExternalPolicyLocal counts every external IP; the port's
			// ExternallyAccessible only those of its family.
			name: "ExternallyAccessible: external IPs only of the other family make eTP Local moot", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, etpLocal, extIPs("2001:db8::1")),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[] lb=[] src=[] aff=None itp=Cluster etp=Local hc=0 cluster=true local=false"},
		},
		{
			name: "MapIPsByIPFamily: external IPs of the family only, bad ones skipped", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, extIPs("192.0.2.2", "fd00::5", "bogus", " 192.0.2.3", "fe80::1%eth0", "192.0.2.1")),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[192.0.2.1 192.0.2.2] lb=[] src=[] " + plain},
		},
		{
			name: "InternalPolicyLocal: iTP Local on an internal-only port", family: v4,
			svc: svc("ns", "a", "10.0.0.1", tcp80, func(s *v1.Service) {
				s.Spec.InternalTrafficPolicy = servicemaptest.Ptr(v1.ServiceInternalTrafficPolicyLocal)
			}),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[] lb=[] src=[] aff=None itp=Local etp=Cluster hc=0 cluster=false local=true"},
		},
		{
			name: "InternalPolicyLocal: nil internalTrafficPolicy is Cluster", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, func(s *v1.Service) { s.Spec.InternalTrafficPolicy = nil }),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[] lb=[] src=[] " + plain},
		},
		{
			name: "newBaseServiceInfo: ClientIP affinity timeout", family: v4,
			svc: svc("ns", "a", "10.0.0.1", tcp80, func(s *v1.Service) {
				s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: servicemaptest.Ptr[int32](10)}}
			}),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[] lb=[] src=[] aff=ClientIP(10s) itp=Cluster etp=Cluster hc=0 cluster=true local=false"},
		},
		{
			name: "TestServiceToServiceMap service with extra space in LoadBalancerSourceRanges", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, ranges(" 10.1.2.0/28", " 10.180.0.0/16 ", "2001:db8::/32")),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[] lb=[] src=[10.1.2.0/28 10.180.0.0/16] " + plain},
		},
		{
			name: "newBaseServiceInfo: a zero-length source range of the family admits everyone", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, ranges("10.1.2.0/28", "0.0.0.0/0")),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[] lb=[] src=[] " + plain},
		},
		{
			name: "newBaseServiceInfo: a zero-length source range of the other family does not", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, ranges("10.1.2.0/28", "::/0")),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[] lb=[] src=[10.1.2.0/28] " + plain},
		},
		{
			name: "MapCIDRsByIPFamily: host bits masked, bad ranges skipped", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, ranges("10.1.2.3/8", "bogus", "10.1.2.0/33")),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[] lb=[] src=[10.0.0.0/8] " + plain},
		},
		{
			name: "TestServiceToServiceMap ipv6 clusterIP under ipv4 mode is filtered", family: v4,
			svc:  svc("ns", "a", "2001:db8:85a3::8a2e:370:7334", tcp80),
			want: map[string]string{},
		},
		{
			name: "TestServiceToServiceMap ipv4 clusterIP under ipv6 mode is filtered", family: v6,
			svc:  svc("ns", "a", "10.0.0.1", tcp80),
			want: map[string]string{},
		},
		{
			name: "GetClusterIPByFamily: no ipFamilies, clusterIP of the family", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, func(s *v1.Service) { s.Spec.ClusterIPs, s.Spec.IPFamilies = nil, nil }),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[] lb=[] src=[] " + plain},
		},
		{
			name: "GetClusterIPByFamily: dual-stack, IPv6 primary, IPv4 proxy takes the second", family: v4,
			svc:  svc("ns", "a", "fd00::1", tcp80, dual([]v1.IPFamily{v6, v4}, "fd00::1", "10.0.0.1")),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[] lb=[] src=[] " + plain},
		},
		{
			name: "GetClusterIPByFamily: family listed without a cluster IP for it", family: v6,
			svc:  svc("ns", "a", "10.0.0.1", tcp80, dual([]v1.IPFamily{v4, v6}, "10.0.0.1")),
			want: map[string]string{},
		},
		{
			name: "TestServiceToServiceMap both families under ipv6 mode, ipv4 fields filtered", family: v6,
			svc: svc("ns", "a", "10.0.0.1", []v1.ServicePort{np("p1", 80, 30080)}, typ(v1.ServiceTypeLoadBalancer),
				dual([]v1.IPFamily{v4, v6}, "10.0.0.1", "2001:db8::1"),
				extIPs("10.0.0.5", "2001:db8::5"), ranges("10.0.0.0/8", "2001:db8::/48"),
				ingress(v1.LoadBalancerIngress{IP: "10.1.2.4"}, v1.LoadBalancerIngress{IP: "2001:db8::4"})),
			want: map[string]string{"ns/a:p1/TCP": "cip=2001:db8::1 port=80 np=30080 ext=[2001:db8::5] lb=[2001:db8::4] src=[2001:db8::/48] " + plain},
		},
		{
			// ParseIPSloppy + IPFamilyOf: an IPv4-mapped IPv6 address is
			// IPv4 (and not IPv6).
			name: "MapIPsByIPFamily / IsVIPMode: IPv4-mapped external and ingress IPs are IPv4", family: v4,
			svc: svc("ns", "a", "10.0.0.1", tcp80, extIPs("::ffff:192.0.2.1"),
				ingress(v1.LoadBalancerIngress{IP: "::ffff:198.51.100.1"})),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=80 np=0 ext=[192.0.2.1] lb=[198.51.100.1] src=[] aff=None itp=Cluster etp=Cluster hc=0 cluster=true local=false"},
		},
		{
			name: "MapIPsByIPFamily: IPv4-mapped external IPs are not IPv6", family: v6,
			svc:  svc("ns", "a", "fd00::1", tcp80, extIPs("::ffff:192.0.2.1", "fd00::9")),
			want: map[string]string{"ns/a:http/TCP": "cip=fd00::1 port=80 np=0 ext=[fd00::9] lb=[] src=[] aff=None itp=Cluster etp=Cluster hc=0 cluster=true local=false"},
		},
		{
			// serviceToServiceMap keys a map by name and protocol: the last
			// of two ports with one key overwrites the first.
			name: "serviceToServiceMap: a port listed twice, the last wins", family: v4,
			svc:  svc("ns", "a", "10.0.0.1", []v1.ServicePort{port("http", 80, v1.ProtocolTCP), port("http", 81, v1.ProtocolTCP)}),
			want: map[string]string{"ns/a:http/TCP": "cip=10.0.0.1 port=81 np=0 ext=[] lb=[] src=[] " + plain},
		},
		{
			name: "serviceToServiceMap: one name, two protocols, two ports; empty name allowed", family: v4,
			svc: svc("ns", "a", "10.0.0.1", []v1.ServicePort{port("", 53, v1.ProtocolTCP), port("", 53, v1.ProtocolUDP)}),
			want: map[string]string{
				"ns/a/TCP": "cip=10.0.0.1 port=53 np=0 ext=[] lb=[] src=[] " + plain,
				"ns/a/UDP": "cip=10.0.0.1 port=53 np=0 ext=[] lb=[] src=[] " + plain,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := servicemap.NewTracker(servicemap.Options{IPFamily: tt.family})
			tr.OnServiceAdd(tt.svc)
			got := map[string]string{}
			for _, p := range tr.Snapshot().Ports() {
				got[p.Name.String()+"/"+string(p.Protocol)] = portView(p)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ports (-want +got):\n%s", diff)
			}
		})
	}
}
