//go:build linux

package ipvs_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/backends/ipvs/ipvsfake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// thisNode is the node every test resolves for; nodeIP is its address.
const (
	thisNode = "node-a"
	nodeIP   = "192.168.0.10"
)

// world is a Backend on fakes, fed by a Tracker.
type world struct {
	t    *testing.T
	ipvs *ipvsfake.IPVS
	host *ipvsfake.Host
	nft  *knftables.Fake
	opts ipvs.Options
	b    *ipvs.Backend
	tr   *servicemap.Tracker
	prev *servicemap.Snapshot
}

func newWorld(t *testing.T, opts ipvs.Options) *world {
	t.Helper()
	w := &world{
		t:    t,
		ipvs: ipvsfake.NewIPVS(),
		host: ipvsfake.NewHost(netip.MustParseAddr(nodeIP), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("fe80::1")),
		nft:  knftables.NewFake(knftables.IPv4Family, ipvs.DefaultTable),
		tr:   servicemap.NewTracker(servicemap.Options{NodeName: thisNode}),
	}
	opts.IPVS, opts.Host, opts.NFT = w.ipvs, w.host, w.nft
	w.opts = opts
	w.restart()
	return w
}

// restart makes a new Backend on the same kernel, as a restarted process.
func (w *world) restart() {
	w.t.Helper()
	b, err := ipvs.New(w.opts)
	if err != nil {
		w.t.Fatalf("New: %v", err)
	}
	w.b, w.prev = b, nil
}

func (w *world) apply(objs ...any) {
	w.t.Helper()
	for _, o := range objs {
		switch o := o.(type) {
		case *v1.Service:
			w.tr.OnServiceUpdate(nil, o)
		case *discoveryv1.EndpointSlice:
			w.tr.OnEndpointSliceUpdate(nil, o)
		default:
			w.t.Fatalf("apply %T", o)
		}
	}
}

func (w *world) remove(objs ...any) {
	w.t.Helper()
	for _, o := range objs {
		switch o := o.(type) {
		case *v1.Service:
			w.tr.OnServiceDelete(o)
		case *discoveryv1.EndpointSlice:
			w.tr.OnEndpointSliceDelete(o)
		default:
			w.t.Fatalf("remove %T", o)
		}
	}
}

// sync syncs to the Tracker's snapshot from the last one synced.
func (w *world) sync() *servicemap.Snapshot {
	w.t.Helper()
	return w.syncFrom(w.prev)
}

// fullSync syncs to the Tracker's snapshot with prev nil.
func (w *world) fullSync() *servicemap.Snapshot {
	w.t.Helper()
	return w.syncFrom(nil)
}

func (w *world) syncFrom(prev *servicemap.Snapshot) *servicemap.Snapshot {
	w.t.Helper()
	if warn := w.tr.Warnings(); len(warn) > 0 {
		w.t.Fatalf("tracker warnings: %v", warn)
	}
	next := w.tr.Snapshot()
	if err := w.b.Sync(context.Background(), prev, next); err != nil {
		w.t.Fatalf("Sync(v%d -> v%d): %v", prev.Version(), next.Version(), err)
	}
	w.prev = next
	return next
}

func (w *world) cleanup() {
	w.t.Helper()
	if err := w.b.Cleanup(context.Background()); err != nil {
		w.t.Fatalf("Cleanup: %v", err)
	}
}

// calls returns the IPVS calls made since the last look, sorted: a
// Backend makes them in no particular order.
func (w *world) calls() []string { return sorted(w.ipvs.TakeCalls()) }

// vs returns the virtual server with key k ("10.96.0.10:80/TCP").
func (w *world) vs(k string) ipvs.VirtualServer {
	w.t.Helper()
	vs, ok := w.ipvs.VirtualServer(key(k))
	if !ok {
		w.t.Fatalf("no virtual server %s", k)
	}
	return vs
}

// bound returns the addresses on a link, sorted, as text.
func bound(h *ipvsfake.Host, link string) string {
	var s []string
	for _, a := range h.Bound(link) {
		s = append(s, a.String())
	}
	return strings.Join(s, " ")
}

// elements returns the elements of an nftables set, sorted.
func (w *world) elements(set string) []string {
	w.t.Helper()
	kind := "set"
	if strings.HasSuffix(set, "-to") {
		kind = "map"
	}
	elems, err := w.nft.ListElements(context.Background(), kind, set)
	if err != nil {
		if knftables.IsNotFound(err) {
			return nil
		}
		w.t.Fatalf("list set %s: %v", set, err)
	}
	var out []string
	for _, e := range elems {
		k := strings.Join(e.Key, " . ")
		if len(e.Value) > 0 {
			k += " : " + strings.Join(e.Value, " . ")
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// key is a virtual server key for tests: "10.96.0.10:80/TCP".
func key(s string) ipvs.Key {
	i := strings.LastIndex(s, "/")
	ap := netip.MustParseAddrPort(s[:i])
	return ipvs.Key{Addr: ap.Addr(), Port: ap.Port(), Protocol: v1.Protocol(s[i+1:])}
}

// Objects.

var (
	tcp80   = []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}
	tcp8080 = []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)}
	udp53   = []v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)}
	udp5353 = []discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 5353, v1.ProtocolUDP)}
)

func eps(e ...servicemaptest.Endpoint) []servicemaptest.Endpoint { return e }

func nodePort(np int32) func(*v1.Service) {
	return func(s *v1.Service) {
		if s.Spec.Type == v1.ServiceTypeClusterIP || s.Spec.Type == "" {
			s.Spec.Type = v1.ServiceTypeNodePort
		}
		s.Spec.Ports = slices.Clone(s.Spec.Ports) // servicemaptest shares the caller's slice
		s.Spec.Ports[0].NodePort = np
	}
}

func loadBalancer(ips ...string) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, v1.LoadBalancerIngress{IP: ip})
		}
	}
}

func externalIPs(ips ...string) func(*v1.Service) {
	return func(s *v1.Service) { s.Spec.ExternalIPs = ips }
}

func sourceRanges(r ...string) func(*v1.Service) {
	return func(s *v1.Service) { s.Spec.LoadBalancerSourceRanges = r }
}

func clientIP(secs int32) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: &secs}}
	}
}

func etpLocal(hc int32) func(*v1.Service) {
	return func(s *v1.Service) {
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = hc
	}
}

func itpLocal(s *v1.Service) {
	p := v1.ServiceInternalTrafficPolicyLocal
	s.Spec.InternalTrafficPolicy = &p
}

// mustSetConns sets a real server's connection counts, as traffic would.
func mustSetConns(t *testing.T, f *ipvsfake.IPVS, k ipvs.Key, rs netip.AddrPort, active, inactive int) {
	t.Helper()
	if err := f.SetConns(k, rs, active, inactive); err != nil {
		t.Fatalf("SetConns(%v, %v): %v", k, rs, err)
	}
}
