package healthcheck_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/healthcheck"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

const node = "node-a"

// loopback is an Options.Listen that opens 127.0.0.1:0 for every address
// asked for, and remembers where each one really listens.
type loopback struct {
	mu        sync.Mutex
	addrs     map[string]string // asked -> real
	requested []string
	fail      map[string]error
}

func newLoopback() *loopback {
	return &loopback{addrs: map[string]string{}, fail: map[string]error{}}
}

func (lb *loopback) listen(network, addr string) (net.Listener, error) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.requested = append(lb.requested, addr)
	if err := lb.fail[addr]; err != nil {
		return nil, err
	}
	l, err := net.Listen(network, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	lb.addrs[addr] = l.Addr().String()
	return l, nil
}

func (lb *loopback) url(t *testing.T, addr string) string {
	t.Helper()
	lb.mu.Lock()
	defer lb.mu.Unlock()
	real, ok := lb.addrs[addr]
	if !ok {
		t.Fatalf("nothing listened for %s", addr)
	}
	return "http://" + real + "/any/path"
}

func (lb *loopback) listens() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return slices.Clone(lb.requested)
}

type answer struct {
	code int
	body string
}

func get(t *testing.T, url string) answer {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct, nosniff := resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"); ct != "application/json" || nosniff != "nosniff" {
		t.Errorf("headers Content-Type %q, X-Content-Type-Options %q", ct, nosniff)
	}
	var r struct{ LocalEndpoints int }
	if err := json.Unmarshal(body, &r); err != nil {
		t.Errorf("body %q: %v", body, err)
	}
	if w := resp.Header.Get("X-Load-Balancing-Endpoint-Weight"); w != strconv.Itoa(r.LocalEndpoints) {
		t.Errorf("header X-Load-Balancing-Endpoint-Weight %q, want %d (the local endpoints)", w, r.LocalEndpoints)
	}
	return answer{resp.StatusCode, string(body)}
}

func body(ns, name string, local int, healthy bool) string {
	return fmt.Sprintf(`{"service":{"namespace":%q,"name":%q},"localEndpoints":%d,"serviceProxyHealthy":%v}`, ns, name, local, healthy)
}

// localService is a LoadBalancer Service with externalTrafficPolicy Local.
func localService(name, ip string, hcPort int32) *v1.Service {
	return servicemaptest.Service("default", name, ip,
		[]v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP), servicemaptest.Port("https", 443, v1.ProtocolTCP)},
		func(s *v1.Service) {
			s.Spec.Type = v1.ServiceTypeLoadBalancer
			s.Spec.Ports[0].NodePort = 30080 + hcPort%100
			s.Spec.Ports[1].NodePort = 30443 + hcPort%100
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = hcPort
		})
}

func slice(svc string, eps ...servicemaptest.Endpoint) *discoveryv1.EndpointSlice {
	return servicemaptest.Slice("default", svc, svc+"-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP), servicemaptest.SlicePort("https", 8443, v1.ProtocolTCP)}, eps)
}

func newServer(t *testing.T, opts healthcheck.Options) (*healthcheck.Server, *loopback) {
	t.Helper()
	lb := newLoopback()
	opts.Listen = lb.listen
	opts.NodeName = node
	s := healthcheck.NewServer(opts)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, lb
}

func mustSync(t *testing.T, s *healthcheck.Server, snap *servicemap.Snapshot) {
	t.Helper()
	if err := s.Sync(snap); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

func TestServerAnswers(t *testing.T) {
	t.Parallel()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	tr.OnServiceAdd(localService("web", "10.96.0.10", 32000))
	tr.OnServiceAdd(localService("idle", "10.96.0.11", 32001))
	tr.OnServiceAdd(servicemaptest.Service("default", "plain", "10.96.0.12", []v1.ServicePort{servicemaptest.Port("", 80, v1.ProtocolTCP)}))
	tr.OnEndpointSliceAdd(slice("web",
		servicemaptest.Ready("10.244.1.5", node),       // counted once for both ports
		servicemaptest.Ready("10.244.1.6", node),       // counted
		servicemaptest.Terminating("10.244.1.7", node), // terminating: not counted
		servicemaptest.NotReady("10.244.1.8", node),    // not ready: not counted
		servicemaptest.Ready("10.244.2.9", "node-b"),   // not local
	))
	tr.OnEndpointSliceAdd(slice("idle", servicemaptest.Ready("10.244.2.10", "node-b")))

	s, lb := newServer(t, healthcheck.Options{})
	mustSync(t, s, tr.Snapshot())
	if diff := cmp.Diff([]uint16{32000, 32001}, s.Ports()); diff != "" {
		t.Errorf("Ports() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{":32000", ":32001"}, lb.listens()); diff != "" {
		t.Errorf("listened on (-want +got):\n%s", diff)
	}

	tests := []struct {
		addr string
		want answer
	}{
		{":32000", answer{http.StatusOK, body("default", "web", 2, true)}},
		{":32001", answer{http.StatusServiceUnavailable, body("default", "idle", 0, true)}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, get(t, lb.url(t, tt.addr)), cmp.AllowUnexported(answer{})); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", tt.addr, diff)
		}
	}
}

func TestServerFollowsSnapshots(t *testing.T) {
	t.Parallel()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	tr.OnServiceAdd(localService("web", "10.96.0.10", 32000))
	s, lb := newServer(t, healthcheck.Options{})
	mustSync(t, s, tr.Snapshot())
	url := lb.url(t, ":32000")
	if got := get(t, url); got.code != http.StatusServiceUnavailable {
		t.Errorf("no endpoints: status %d, want 503", got.code)
	}

	// A new local endpoint changes the answer; the listener stays.
	tr.OnEndpointSliceAdd(slice("web", servicemaptest.Ready("10.244.1.5", node)))
	mustSync(t, s, tr.Snapshot())
	if got := get(t, url); got.code != http.StatusOK || got.body != body("default", "web", 1, true) {
		t.Errorf("one local endpoint: %+v", got)
	}
	if n := len(lb.listens()); n != 1 {
		t.Errorf("listened %d times, want 1: an unchanged port is not reopened", n)
	}

	// Moving the service to another port closes the old one.
	tr.OnServiceUpdate(nil, localService("web", "10.96.0.10", 32002))
	mustSync(t, s, tr.Snapshot())
	if diff := cmp.Diff([]uint16{32002}, s.Ports()); diff != "" {
		t.Errorf("Ports() (-want +got):\n%s", diff)
	}
	if _, err := http.Get(url); err == nil {
		t.Errorf("GET on the closed port %s succeeded", url)
	}
	if got := get(t, lb.url(t, ":32002")); got.code != http.StatusOK {
		t.Errorf("new port: %+v", got)
	}

	tr.OnServiceDelete(localService("web", "10.96.0.10", 32002))
	mustSync(t, s, tr.Snapshot())
	if ports := s.Ports(); len(ports) != 0 {
		t.Errorf("Ports() = %v after the service went, want none", ports)
	}
}

func TestServerProxyUnhealthy(t *testing.T) {
	t.Parallel()
	var healthy atomic.Bool
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	tr.OnServiceAdd(localService("web", "10.96.0.10", 32000))
	tr.OnEndpointSliceAdd(slice("web", servicemaptest.Ready("10.244.1.5", node)))
	s, lb := newServer(t, healthcheck.Options{ProxyHealthy: healthy.Load})
	mustSync(t, s, tr.Snapshot())

	want := answer{http.StatusServiceUnavailable, body("default", "web", 1, false)}
	if diff := cmp.Diff(want, get(t, lb.url(t, ":32000")), cmp.AllowUnexported(answer{})); diff != "" {
		t.Errorf("unhealthy proxy (-want +got):\n%s", diff)
	}
	healthy.Store(true)
	if got := get(t, lb.url(t, ":32000")); got.code != http.StatusOK {
		t.Errorf("healthy proxy: %+v", got)
	}
}

func TestServerBindAddresses(t *testing.T) {
	t.Parallel()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	tr.OnServiceAdd(localService("web", "10.96.0.10", 32000))
	s, lb := newServer(t, healthcheck.Options{Addresses: []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"),
	}})
	mustSync(t, s, tr.Snapshot())
	if diff := cmp.Diff([]string{"192.0.2.1:32000", "[2001:db8::1]:32000"}, lb.listens()); diff != "" {
		t.Errorf("listened on (-want +got):\n%s", diff)
	}
	for _, addr := range []string{"192.0.2.1:32000", "[2001:db8::1]:32000"} {
		if got := get(t, lb.url(t, addr)); got.body != body("default", "web", 0, true) {
			t.Errorf("GET %s: %+v", addr, got)
		}
	}
}

func TestServerListenFailureIsRetried(t *testing.T) {
	t.Parallel()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	tr.OnServiceAdd(localService("web", "10.96.0.10", 32000))
	tr.OnServiceAdd(localService("api", "10.96.0.11", 32001))
	s, lb := newServer(t, healthcheck.Options{Addresses: []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
	}})
	inUse := errors.New("address already in use")
	lb.fail["192.0.2.2:32000"] = inUse

	err := s.Sync(tr.Snapshot())
	if !errors.Is(err, inUse) || !strings.Contains(err.Error(), "health check port 32000 of default/web") {
		t.Fatalf("Sync = %v, want the listen error for port 32000", err)
	}
	if diff := cmp.Diff([]uint16{32001}, s.Ports()); diff != "" {
		t.Errorf("Ports() (-want +got):\n%s", diff)
	}
	// The half-opened port was closed again.
	if _, err := http.Get(lb.url(t, "192.0.2.1:32000")); err == nil {
		t.Error("the first address of the failed port still answers")
	}

	lb.mu.Lock()
	delete(lb.fail, "192.0.2.2:32000")
	lb.mu.Unlock()
	mustSync(t, s, tr.Snapshot())
	if diff := cmp.Diff([]uint16{32000, 32001}, s.Ports()); diff != "" {
		t.Errorf("Ports() after retry (-want +got):\n%s", diff)
	}
	if got := get(t, lb.url(t, "192.0.2.2:32000")); got.body != body("default", "web", 0, true) {
		t.Errorf("GET after retry: %+v", got)
	}
}

func TestServerPortConflict(t *testing.T) {
	t.Parallel()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	tr.OnServiceAdd(localService("b", "10.96.0.10", 32000))
	tr.OnServiceAdd(localService("a", "10.96.0.11", 32000))
	tr.OnEndpointSliceAdd(slice("b", servicemaptest.Ready("10.244.1.5", node)))
	s, lb := newServer(t, healthcheck.Options{})
	err := s.Sync(tr.Snapshot())
	if err == nil || !strings.Contains(err.Error(), "port 32000 of default/b is already used by default/a") {
		t.Fatalf("Sync = %v, want a conflict", err)
	}
	if got := get(t, lb.url(t, ":32000")); got.body != body("default", "a", 0, true) {
		t.Errorf("contested port answers %+v, want service a", got)
	}
}

func TestServerClose(t *testing.T) {
	t.Parallel()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	tr.OnServiceAdd(localService("web", "10.96.0.10", 32000))
	lb := newLoopback()
	s := healthcheck.NewServer(healthcheck.Options{Listen: lb.listen})
	mustSync(t, s, tr.Snapshot())
	url := lb.url(t, ":32000")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(url); err == nil {
		t.Error("GET after Close succeeded")
	}
	if err := s.Sync(tr.Snapshot()); !errors.Is(err, healthcheck.ErrClosed) {
		t.Errorf("Sync after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
