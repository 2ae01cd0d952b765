package servicemap_test

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// FuzzTracker feeds the Tracker event sequences decoded from fuzz bytes,
// including malformed values (bad addresses, ports, protocols, families),
// and checks that it never panics and keeps its contracts: Diff is exact and
// versions move by one per change.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0\xc0"))
	f.Add([]byte{3, 3, 3, 200, 17, 4, 9, 1, 0, 255, 255, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		tr := servicemap.NewTracker(servicemap.Options{NodeName: "n1"})
		prev := tr.Snapshot()
		services := map[string]*v1.Service{}
		slices := map[string]*discoveryv1.EndpointSlice{}
		for steps := 0; len(data) > 0 && steps < 64; steps++ {
			op, a, b := next(), next(), next()
			name := fmt.Sprintf("s%d", a%4)
			switch op % 6 {
			case 0:
				svc := fuzzService(name, a, b)
				tr.OnServiceUpdate(services[name], svc)
				services[name] = svc
			case 1:
				if s := services[name]; s != nil {
					tr.OnServiceDelete(s)
					delete(services, name)
				}
			case 2, 3:
				key := fmt.Sprintf("%s-%d", name, b%3)
				es := fuzzSlice(name, key, a, b, next(), next())
				tr.OnEndpointSliceUpdate(slices[key], es)
				slices[key] = es
			case 4:
				key := fmt.Sprintf("%s-%d", name, b%3)
				if es := slices[key]; es != nil {
					tr.OnEndpointSliceDelete(es)
					delete(slices, key)
				}
			case 5:
				tr.OnNodeUpdate(nil, servicemaptest.Node("n1", []string{"", "z1", "z2"}[b%3]))
			}
			snap := tr.Snapshot()
			c := servicemap.Diff(prev, snap)
			if d := portsDiff(servicemap.Apply(prev, c), snap); d != "" {
				t.Fatalf("Diff not exact: %s", d)
			}
			if snap != prev && snap.Version() != prev.Version()+1 {
				t.Fatalf("version jumped from %d to %d", prev.Version(), snap.Version())
			}
			prev = snap
			_ = tr.Warnings()
			checkSnapshotInvariants(t, snap)
		}
	})
}

// checkSnapshotInvariants checks what the Snapshot promises whatever the
// input: every frontend has one owner, and Frontend and NodePort find it;
// no address of the other family or special address, and no name a rule's
// text would have to escape, reaches it.
func checkSnapshotInvariants(t *testing.T, snap *servicemap.Snapshot) {
	t.Helper()
	owner := map[string]*servicemap.ServicePort{}
	claim := func(key string, p *servicemap.ServicePort) {
		if q := owner[key]; q != nil && q != p {
			t.Fatalf("frontend %s owned by both %v and %v", key, q.Name, p.Name)
		}
		owner[key] = p
	}
	validName := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	for p := range snap.All() {
		for _, n := range []string{p.Name.Namespace, p.Name.Name} {
			if !validName.MatchString(n) {
				t.Fatalf("name %q reached the snapshot", n)
			}
		}
		if p.Name.Port != "" && !validName.MatchString(p.Name.Port) {
			t.Fatalf("port name %q reached the snapshot", p.Name.Port)
		}
		addrs := slices.Concat([]netip.Addr{p.ClusterIP}, p.ExternalIPs, p.LoadBalancerIPs)
		for _, ep := range p.Endpoints {
			addrs = append(addrs, ep.Addr.Addr())
		}
		for _, a := range addrs {
			if a.Is6() != (snap.IPFamily() == v1.IPv6Protocol) || a.IsLoopback() || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsMulticast() {
				t.Fatalf("address %v of %v reached a %s snapshot", a, p.Name, snap.IPFamily())
			}
		}
		check := func(addr netip.Addr, kind servicemap.FrontendKind) {
			k := netip.AddrPortFrom(addr, p.Port)
			claim(string(p.Protocol)+" "+k.String(), p)
			if got, gotKind := snap.Frontend(p.Protocol, k); got != p || gotKind != kind {
				t.Fatalf("Frontend(%s %v) = %v %v, want %v %v", p.Protocol, k, got, gotKind, p.Name, kind)
			}
		}
		check(p.ClusterIP, servicemap.FrontendClusterIP)
		for _, a := range p.ExternalIPs {
			check(a, servicemap.FrontendExternalIP)
		}
		for _, a := range p.LoadBalancerIPs {
			check(a, servicemap.FrontendLoadBalancerIP)
		}
		if p.NodePort != 0 {
			claim(fmt.Sprintf("%s node port %d", p.Protocol, p.NodePort), p)
			if got := snap.NodePort(p.Protocol, p.NodePort); got != p {
				t.Fatalf("NodePort(%s %d) = %v, want %v", p.Protocol, p.NodePort, got, p.Name)
			}
		}
	}
}

func fuzzService(name string, a, b byte) *v1.Service {
	ips := []string{"10.96.0.1", "None", "", "fd00::1", "010.96.000.002", "bogus", "10.96.0.3", "127.0.0.1", "0.0.0.0"}
	protos := []v1.Protocol{"TCP", "UDP", "SCTP", "", "ICMP"}
	ports := []int32{80, 0, -1, 65536, 53}
	portNames := []string{"p", "p\n-A INJECTED", `p"}`, "P", ""}
	extIPs := []string{"10.96.0.1", "10.96.0.3", "169.254.169.254", "224.0.0.1", "fd00::5", "192.0.2.9"}
	return servicemaptest.Service("ns", name, ips[int(a)%len(ips)],
		[]v1.ServicePort{{Name: portNames[int(a>>5)%len(portNames)], Port: ports[int(b)%len(ports)], Protocol: protos[int(a>>3)%len(protos)], NodePort: int32(b%4) * 300}},
		func(s *v1.Service) {
			if b&32 != 0 {
				s.Spec.ExternalIPs = []string{extIPs[int(a)%len(extIPs)], extIPs[int(b>>2)%len(extIPs)]}
			}
			if b&64 != 0 {
				// A cluster IP of the other family than ipFamilies says.
				s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol}
				s.Spec.ClusterIPs = []string{"fd00::10"}
			}
			if b&128 != 0 {
				s.CreationTimestamp = metav1.Unix(int64(a), 0)
			}
			if b&1 != 0 {
				s.Spec.Type = v1.ServiceTypeLoadBalancer
				s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
				s.Spec.LoadBalancerSourceRanges = []string{" 10.0.0.0/8", "x/33", "fd00::/8"}
				s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "192.0.2.1"}, {IP: "zz"}}
			}
			if b&2 != 0 {
				s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
				if b&4 != 0 {
					s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: servicemaptest.Ptr(int32(a) * 1000)}}
				}
			}
			if b&8 != 0 {
				s.Spec.Type = v1.ServiceTypeExternalName
			}
			if b&16 != 0 {
				s.Spec.InternalTrafficPolicy = servicemaptest.Ptr(v1.ServiceInternalTrafficPolicyLocal)
			}
			if a&64 != 0 {
				s.Spec.IPFamilies = nil
				s.Spec.ClusterIPs = nil
			}
		})
}

func fuzzSlice(service, name string, a, b, c, d byte) *discoveryv1.EndpointSlice {
	addrs := []string{"10.0.0.1", "10.0.0.2", "010.0.0.3", "fd00::9", "", "nope", "10.0.0.1", "127.0.0.1", "169.254.169.254"}
	var eps []servicemaptest.Endpoint
	for i := range int(c % 5) {
		e := servicemaptest.Endpoint{IP: addrs[(int(d)+i)%len(addrs)], Node: []string{"n1", "n2", ""}[i%3]}
		bits := d >> i
		if bits&1 != 0 {
			e.Ready = servicemaptest.Ptr(false)
		}
		if bits&2 != 0 {
			e.Terminating = servicemaptest.Ptr(true)
		}
		if bits&4 != 0 {
			e.ZoneHints = []string{"z1"}
		}
		if bits&8 != 0 {
			e.NodeHints = []string{"n1", "n1"}
		}
		eps = append(eps, e)
	}
	port := discoveryv1.EndpointPort{Name: servicemaptest.Ptr("p"), Port: servicemaptest.Ptr(int32(8080 + int(a%3))), Protocol: servicemaptest.Ptr(v1.Protocol([]string{"TCP", "UDP", "SCTP", "", "GRE"}[int(b)%5]))}
	if a&32 != 0 {
		port.Port = nil
	}
	if a&128 != 0 {
		port.Name = nil
	}
	return servicemaptest.Slice("ns", []string{service, "", service}[int(b>>4)%3], name, []discoveryv1.EndpointPort{port}, eps,
		func(es *discoveryv1.EndpointSlice) {
			if b&8 != 0 {
				es.AddressType = discoveryv1.AddressTypeFQDN
			}
		})
}
