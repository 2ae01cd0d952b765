package fake_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

const node = "node-a"

func web(mutate ...func(*v1.Service)) *v1.Service {
	return servicemaptest.Service("default", "web", "10.96.0.10",
		[]v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}, mutate...)
}

func webSlice(eps ...servicemaptest.Endpoint) *discoveryv1.EndpointSlice {
	return servicemaptest.Slice("default", "web", "web-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)}, eps)
}

func dns() *v1.Service {
	return servicemaptest.Service("kube-system", "dns", "10.96.0.53",
		[]v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP), servicemaptest.Port("dns-tcp", 53, v1.ProtocolTCP)})
}

func newTracker() *servicemap.Tracker {
	return servicemap.NewTracker(servicemap.Options{NodeName: node})
}

func mustSync(t *testing.T, b *fake.Backend, prev, next *servicemap.Snapshot) {
	t.Helper()
	if err := b.Sync(context.Background(), prev, next); err != nil {
		t.Fatalf("Sync(%d -> %d): %v", prev.Version(), next.Version(), err)
	}
}

func checkDump(t *testing.T, b *fake.Backend, want string) {
	t.Helper()
	if diff := cmp.Diff(want, b.Dump()); diff != "" {
		t.Errorf("Dump() mismatch (-want +got):\n%s", diff)
	}
}

func TestRenderFormat(t *testing.T) {
	tr := newTracker()
	tr.OnServiceAdd(web(func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalIPs = []string{"192.0.2.20", "192.0.2.10"}
		s.Spec.LoadBalancerSourceRanges = []string{"198.51.100.0/24"}
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = 32000
		s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
		s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: servicemaptest.Ptr[int32](60)}}
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{{IP: "203.0.113.1"}}
	}))
	tr.OnEndpointSliceAdd(webSlice(servicemaptest.Ready("10.244.1.5", node), servicemaptest.Ready("10.244.2.7", "node-b")))
	tr.OnServiceAdd(dns())
	tr.OnServiceAdd(servicemaptest.Service("default", "local", "10.96.0.11",
		[]v1.ServicePort{servicemaptest.Port("", 80, v1.ProtocolTCP)},
		func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = servicemaptest.Ptr(v1.ServiceInternalTrafficPolicyLocal)
		}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "local", "local-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("", 80, v1.ProtocolTCP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.2.9", "node-b")}))

	want := "" +
		"default/local TCP 10.96.0.11:80 internal=Local local=drop\n" +
		"default/web:http TCP 10.96.0.10:80 nodePort=30080 externalIPs=192.0.2.10,192.0.2.20 " +
		"loadBalancerIPs=203.0.113.1 sourceRanges=198.51.100.0/24 affinity=ClientIP(60s) external=Local " +
		"healthCheckNodePort=32000 cluster=10.244.1.5:8080,10.244.2.7:8080 local=10.244.1.5:8080\n" +
		"kube-system/dns:dns UDP 10.96.0.53:53 cluster=reject\n" +
		"kube-system/dns:dns-tcp TCP 10.96.0.53:53 cluster=reject\n"
	snap := tr.Snapshot()
	if diff := cmp.Diff(want, fake.Render(snap)); diff != "" {
		t.Errorf("Render mismatch (-want +got):\n%s", diff)
	}
	b := fake.New(fake.Options{})
	mustSync(t, b, nil, snap)
	checkDump(t, b, want)
}

func TestIncrementalSync(t *testing.T) {
	tr := newTracker()
	tr.OnServiceAdd(web())
	tr.OnServiceAdd(dns())
	s1 := tr.Snapshot()
	b := fake.New(fake.Options{})
	mustSync(t, b, nil, s1)

	tr.OnEndpointSliceAdd(webSlice(servicemaptest.Ready("10.244.1.5", node)))
	tr.OnServiceDelete(dns())
	tr.OnServiceAdd(servicemaptest.Service("default", "api", "10.96.0.12", []v1.ServicePort{servicemaptest.Port("", 443, v1.ProtocolTCP)}))
	s2 := tr.Snapshot()
	mustSync(t, b, s1, s2)
	checkDump(t, b, fake.Render(s2))

	recs := b.Syncs()
	if len(recs) != 2 {
		t.Fatalf("Syncs() = %d records, want 2", len(recs))
	}
	got := recs[1]
	if got.Full || got.From != s1.Version() || got.To != s2.Version() || got.Ops != 4 || got.Err != nil {
		t.Errorf("record = %+v, want incremental %d -> %d with 4 ops (1 add, 1 replace, 2 removes)", got, s1.Version(), s2.Version())
	}
	if !recs[0].Full || recs[0].Ops != 3 {
		t.Errorf("first record = %+v, want full with 3 ops", recs[0])
	}
}

func TestInjectedFailuresKeepState(t *testing.T) {
	tr := newTracker()
	tr.OnServiceAdd(web())
	s1 := tr.Snapshot()
	tr.OnServiceAdd(dns())
	s2 := tr.Snapshot()
	boom := errors.New("boom")

	b := fake.New(fake.Options{})
	b.FailNext(boom)
	err := b.Sync(context.Background(), nil, s1)
	if !errors.Is(err, backends.ErrApply) || !errors.Is(err, boom) {
		t.Fatalf("Sync after FailNext = %v, want ErrApply wrapping boom", err)
	}
	checkDump(t, b, "")
	mustSync(t, b, nil, s1) // fails once only

	b.FailAfter(1, boom)
	mustSync(t, b, nil, s1)
	if err := b.Sync(context.Background(), s1, s2); !errors.Is(err, boom) {
		t.Fatalf("second Sync after FailAfter(1) = %v, want boom", err)
	}
	checkDump(t, b, fake.Render(s1))
	mustSync(t, b, s1, s2)
	checkDump(t, b, fake.Render(s2))

	recs := b.Syncs()
	var failed int
	for _, r := range recs {
		if r.Err != nil {
			failed++
			if r.Ops != 0 {
				t.Errorf("failed record %+v has ops", r)
			}
		}
	}
	if len(recs) != 5 || failed != 2 {
		t.Errorf("Syncs() = %d records, %d failed; want 5, 2 failed", len(recs), failed)
	}
}

func TestBeforeSyncHook(t *testing.T) {
	tr := newTracker()
	tr.OnServiceAdd(web())
	snap := tr.Snapshot()
	refuse := errors.New("refused")
	calls := 0
	b := fake.New(fake.Options{BeforeSync: func(_ context.Context, prev, next *servicemap.Snapshot) error {
		calls++
		if calls == 1 {
			return refuse
		}
		return nil
	}})
	if err := b.Sync(context.Background(), nil, snap); !errors.Is(err, backends.ErrApply) || !errors.Is(err, refuse) {
		t.Fatalf("Sync = %v, want ErrApply wrapping the hook's error", err)
	}
	checkDump(t, b, "")
	mustSync(t, b, nil, snap)
	checkDump(t, b, fake.Render(snap))
}

// An incremental Sync checks what it replaces against the data plane; a full
// Sync repairs whatever was altered, touching only that.
func TestCorruptedStateConvergesOnFullSync(t *testing.T) {
	tr := newTracker()
	tr.OnServiceAdd(web())
	tr.OnServiceAdd(dns())
	s1 := tr.Snapshot()
	b := fake.New(fake.Options{})
	mustSync(t, b, nil, s1)

	webName := servicemap.ServicePortName{Namespace: "default", Name: "web", Port: "http", Protocol: v1.ProtocolTCP}
	if !b.Corrupt(webName) {
		t.Fatal("Corrupt(web) = false, want true")
	}
	if b.Corrupt(webName) {
		t.Fatal("second Corrupt(web) = true, want false")
	}
	tr.OnEndpointSliceAdd(webSlice(servicemaptest.Ready("10.244.1.5", node)))
	s2 := tr.Snapshot()
	err := b.Sync(context.Background(), s1, s2)
	if !errors.Is(err, backends.ErrApply) || !strings.Contains(err.Error(), "not in the data plane") {
		t.Fatalf("incremental Sync over a missing entry = %v, want ErrApply: not in the data plane", err)
	}
	mustSync(t, b, nil, s2)
	checkDump(t, b, fake.Render(s2))
	if last := b.Syncs()[2]; last.Ops != 1 {
		t.Errorf("full Sync after corruption made %d ops, want 1 (the missing entry)", last.Ops)
	}
}

func TestWrongPrevIsRejected(t *testing.T) {
	tr := newTracker()
	s0 := tr.Snapshot()
	tr.OnServiceAdd(web())
	s1 := tr.Snapshot()
	tr.OnServiceAdd(web(func(s *v1.Service) { s.Spec.Ports[0].NodePort = 30080; s.Spec.Type = v1.ServiceTypeNodePort }))
	s2 := tr.Snapshot()

	b := fake.New(fake.Options{})
	mustSync(t, b, nil, s1)
	// Adding what is there already: prev claims an older state.
	if err := b.Sync(context.Background(), s0, s1); !errors.Is(err, backends.ErrApply) {
		t.Errorf("Sync(s0 -> s1) over s1 = %v, want ErrApply", err)
	}
	mustSync(t, b, nil, s2)
	// Replacing an entry that differs from what prev says.
	if err := b.Sync(context.Background(), s1, s2); !errors.Is(err, backends.ErrApply) {
		t.Errorf("Sync(s1 -> s2) over s2 = %v, want ErrApply", err)
	}
	checkDump(t, b, fake.Render(s2))
}

// TestConflictingFrontendsAreRejected: a Tracker gives a contested
// address to one owner (here default/web, first by namespace/name), so the
// fake programs that one; a snapshot made without that guarantee (by
// Apply of hand-written Changes) is refused, as a kernel refuses a
// duplicate.
func TestConflictingFrontendsAreRejected(t *testing.T) {
	tr := newTracker()
	tr.OnServiceAdd(web())
	s1 := tr.Snapshot()
	tr.OnServiceAdd(servicemaptest.Service("other", "web", "10.96.0.10", []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	s2 := tr.Snapshot()
	if s2 != s1 && s2.Service("other", "web") != nil {
		t.Fatalf("the Tracker let other/web take default/web's cluster IP")
	}
	b := fake.New(fake.Options{})
	mustSync(t, b, nil, s1)
	mustSync(t, b, s1, s2)

	dup := *s1.Ports()[0]
	dup.Name.Namespace = "other"
	s3 := servicemap.Apply(s2, servicemap.Changes{From: s2.Version(), To: s2.Version() + 1, Added: []*servicemap.ServicePort{&dup}})
	err := b.Sync(context.Background(), s2, s3)
	if !errors.Is(err, backends.ErrApply) || !strings.Contains(err.Error(), "TCP 10.96.0.10:80 already used by default/web:http") {
		t.Fatalf("Sync with two services on one address = %v, want a conflict", err)
	}
	checkDump(t, b, fake.Render(s2))
}

func TestCleanupAndCancel(t *testing.T) {
	tr := newTracker()
	tr.OnServiceAdd(web())
	snap := tr.Snapshot()
	b := fake.New(fake.Options{})
	mustSync(t, b, nil, snap)
	if err := b.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkDump(t, b, "")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Sync(ctx, nil, snap); !errors.Is(err, context.Canceled) {
		t.Errorf("Sync with a cancelled context = %v, want context.Canceled", err)
	}
	checkDump(t, b, "")
	if name := b.Name(); name != "fake" {
		t.Errorf("Name() = %q", name)
	}
}

// SyncChanges applies the Diff it is given, not one of its own: a Diff
// that leaves out a change leaves it out of the data plane.
func TestSyncChangesUsesTheGivenDiff(t *testing.T) {
	tr := newTracker()
	tr.OnServiceAdd(web())
	s1 := tr.Snapshot()
	tr.OnServiceAdd(dns())
	tr.OnEndpointSliceAdd(webSlice(servicemaptest.Ready("10.244.1.5", node)))
	s2 := tr.Snapshot()

	b := fake.New(fake.Options{})
	mustSync(t, b, nil, s1)
	c := servicemap.Diff(s1, s2)
	if len(c.Added) == 0 || len(c.Updated) != 1 {
		t.Fatalf("Diff = %+v, want an addition and one update", c)
	}
	partial := c
	partial.Added = nil
	if err := b.SyncChanges(context.Background(), s1, s2, &partial); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.Dump(), "dns") || !strings.Contains(b.Dump(), "10.244.1.5:8080") {
		t.Errorf("Dump() after a Diff without the addition:\n%s", b.Dump())
	}
	if last := b.Syncs()[1]; !last.Given || last.Full || last.Ops != 1 {
		t.Errorf("record = %+v, want an incremental sync with the Diff given, 1 op", last)
	}
	mustSync(t, b, nil, s2)
	if last := b.Syncs()[2]; last.Given {
		t.Errorf("full Sync recorded as given a Diff: %+v", last)
	}
}

// Drifted reports a state altered behind the Backend's back until a full
// Sync repairs it; an incremental Sync does not clear it.
func TestDrifted(t *testing.T) {
	tr := newTracker()
	tr.OnServiceAdd(web())
	s1 := tr.Snapshot()
	tr.OnServiceAdd(dns())
	s2 := tr.Snapshot()
	ctx := context.Background()
	b := fake.New(fake.Options{})
	drifted := func() bool {
		t.Helper()
		d, err := b.Drifted(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	mustSync(t, b, nil, s1)
	if drifted() {
		t.Fatal("Drifted after a full sync")
	}
	b.Corrupt(servicemap.ServicePortName{Namespace: "default", Name: "web", Port: "http", Protocol: v1.ProtocolTCP})
	if !drifted() {
		t.Fatal("Drifted = false after Corrupt")
	}
	mustSync(t, b, s1, s2) // adds dns; web is still missing
	if !drifted() {
		t.Error("an incremental sync cleared the drift")
	}
	mustSync(t, b, nil, s2)
	if drifted() {
		t.Error("Drifted after the repairing full sync")
	}
	checkDump(t, b, fake.Render(s2))
	b.Flush()
	if !drifted() || b.Dump() != "" {
		t.Errorf("after Flush: Drifted false or state %q", b.Dump())
	}

	boom := errors.New("netlink: no buffer space")
	b2 := fake.New(fake.Options{BeforeDriftCheck: func(context.Context) error { return boom }})
	if _, err := b2.Drifted(ctx); !errors.Is(err, boom) {
		t.Errorf("Drifted with a failing hook = %v, want %v", err, boom)
	}
}
