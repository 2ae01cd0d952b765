//go:build linux

package nftables_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// newFakeBackend returns a backend over a fake ip (or ip6) table "lbkit".
func newFakeBackend(t testing.TB, family v1.IPFamily, spec nftables.Spec, opts ...nftables.Options) (*nftables.Backend, *knftables.Fake) {
	t.Helper()
	nftFamily := knftables.IPv4Family
	if family == v1.IPv6Protocol {
		nftFamily = knftables.IPv6Family
	}
	fake := knftables.NewFake(nftFamily, "lbkit")
	var o nftables.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	o.NFT = fake
	b, err := nftables.New(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	return b, fake
}

func mustSync(t testing.TB, b *nftables.Backend, prev, next *servicemap.Snapshot) {
	t.Helper()
	if err := b.Sync(context.Background(), prev, next); err != nil {
		t.Fatalf("Sync(%d -> %d): %v", prev.Version(), next.Version(), err)
	}
}

// TestFullSyncMatchesRender applies every golden snapshot to a fake table
// and checks it holds exactly what Render prints.
func TestFullSyncMatchesRender(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			family := tc.family
			if family == "" {
				family = v1.IPv4Protocol
			}
			snap := tc.objs.snapshot(t, family)
			// Several batches even for small cases.
			b, fake := newFakeBackend(t, family, tc.opts, nftables.Options{BatchSize: 1})
			mustSync(t, b, nil, snap)
			checkMatchesRender(t, fake, nftables.Render(snap, tc.opts))
		})
	}
}

// lastOps returns the number of operations of the fake's last transaction,
// and the transaction itself (nil if none ran).
func lastOps(f *knftables.Fake) (int, *knftables.Transaction) {
	f.RLock()
	defer f.RUnlock()
	if f.LastTransaction == nil {
		return 0, nil
	}
	return f.LastTransaction.NumOperations(), f.LastTransaction
}

// TestIncrementalSync walks a tracker through typical changes; after each,
// the table must equal Render of the new snapshot, and the transaction must
// be small.
func TestIncrementalSync(t *testing.T) {
	o := cluster(30, 3)
	tr := o.tracker(v1.IPv4Protocol)
	tr.OnServiceAdd(servicemaptest.Service("shop", "front", "10.96.200.1", ports(servicemaptest.Port("https", 443, v1.ProtocolTCP)),
		servicemaptest.LoadBalancer("203.0.113.7"), nodePort(443, 30443), servicemaptest.ExternalLocal(32000), servicemaptest.ClientIP(600), servicemaptest.SourceRanges("192.168.0.0/16")))
	frontSlice := servicemaptest.Slice("shop", "front", "front-1", slicePorts(servicemaptest.SlicePort("https", 8443, v1.ProtocolTCP)), eps(
		servicemaptest.Ready("10.244.1.15", thisNode), servicemaptest.Ready("10.244.2.15", "node-b")))
	tr.OnEndpointSliceAdd(frontSlice)

	b, fake := newFakeBackend(t, v1.IPv4Protocol, podCIDRs)
	prev := tr.Snapshot()
	mustSync(t, b, nil, prev)
	checkMatchesRender(t, fake, nftables.Render(prev, podCIDRs))

	steps := []struct {
		name   string
		change func()
		maxOps int
	}{
		{"one endpoint of a ClusterIP service goes away", func() {
			es := o.slices[7].DeepCopy()
			es.Endpoints = es.Endpoints[:2]
			tr.OnEndpointSliceUpdate(o.slices[7], es)
		}, 4}, // flush + 2 rules + 1 (masquerade rule)
		{"a local endpoint is added to the LoadBalancer service", func() {
			es := frontSlice.DeepCopy()
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.244.1.16"},
				NodeName: servicemaptest.Ptr(thisNode), Conditions: discoveryv1.EndpointConditions{
					Ready: servicemaptest.Ptr(true), Serving: servicemaptest.Ptr(true), Terminating: servicemaptest.Ptr(false)}})
			tr.OnEndpointSliceUpdate(frontSlice, es)
			frontSlice = es
		}, 20},
		{"affinity timeout changes", func() {
			tr.OnServiceAdd(servicemaptest.Service("shop", "front", "10.96.200.1", ports(servicemaptest.Port("https", 443, v1.ProtocolTCP)),
				servicemaptest.LoadBalancer("203.0.113.7"), nodePort(443, 30443), servicemaptest.ExternalLocal(32000), servicemaptest.ClientIP(900), servicemaptest.SourceRanges("192.168.0.0/16", "10.0.0.0/8")))
		}, 40},
		{"a service is removed", func() { tr.OnServiceDelete(o.services[3]) }, 6},
		{"a service is added", func() {
			tr.OnServiceAdd(servicemaptest.Service("new", "svc", "10.96.201.1", tcp80, nodePort(80, 30201)))
			tr.OnEndpointSliceAdd(servicemaptest.Slice("new", "svc", "svc-1", tcp8080, eps(servicemaptest.Ready("10.244.9.9", "node-b"))))
		}, 12},
		{"the LoadBalancer service loses every endpoint", func() { tr.OnEndpointSliceDelete(frontSlice) }, 40},
		{"the LoadBalancer service is removed", func() {
			tr.OnServiceDelete(servicemaptest.Service("shop", "front", "10.96.200.1", nil))
		}, 10},
	}
	for _, step := range steps {
		step.change()
		next := tr.Snapshot()
		mustSync(t, b, prev, next)
		n, tx := lastOps(fake)
		if n == 0 || n > step.maxOps {
			t.Errorf("%s: transaction has %d operations, want 1 to %d:\n%s", step.name, n, step.maxOps, tx)
		}
		checkMatchesRender(t, fake, nftables.Render(next, podCIDRs))
		prev = next
	}

	// Nothing changed: nothing is sent.
	_, before := lastOps(fake)
	mustSync(t, b, prev, prev)
	if _, after := lastOps(fake); after != before {
		t.Errorf("a sync without changes ran a transaction:\n%s", after)
	}
}

// TestIncrementalSizeIndependentOfCluster checks that a one-endpoint change
// costs the same number of operations at 10 and at 1,000 services.
func TestIncrementalSizeIndependentOfCluster(t *testing.T) {
	var sizes []int
	for _, n := range []int{10, 1000} {
		o := cluster(n, 10)
		tr := o.tracker(v1.IPv4Protocol)
		b, fake := newFakeBackend(t, v1.IPv4Protocol, podCIDRs)
		prev := tr.Snapshot()
		mustSync(t, b, nil, prev)
		es := o.slices[n/2].DeepCopy()
		es.Endpoints[4].Conditions.Ready = servicemaptest.Ptr(false)
		tr.OnEndpointSliceUpdate(o.slices[n/2], es)
		next := tr.Snapshot()
		mustSync(t, b, prev, next)
		ops, tx := lastOps(fake)
		if !strings.Contains(tx.String(), "flush chain") {
			t.Fatalf("unexpected transaction:\n%s", tx)
		}
		sizes = append(sizes, ops)
	}
	if sizes[0] != sizes[1] || sizes[0] > 12 {
		t.Errorf("one-endpoint change: %d operations at 10 services, %d at 1000; want the same, at most 12", sizes[0], sizes[1])
	}
}

// TestFailedSyncKeepsStateAndRecovers makes an incremental transaction fail
// inside the fake: the table keeps its previous content, the error wraps
// ErrApply, and the next sync (a full one) converges.
func TestFailedSyncKeepsStateAndRecovers(t *testing.T) {
	o := cluster(5, 2)
	tr := o.tracker(v1.IPv4Protocol)
	b, fake := newFakeBackend(t, v1.IPv4Protocol, podCIDRs)
	prev := tr.Snapshot()
	mustSync(t, b, nil, prev)

	// Someone deletes a chain every service chain jumps to.
	fake.Lock()
	delete(fake.Table.Chains, "mark-for-masquerade")
	fake.Unlock()
	before := fake.Dump()

	tr.OnServiceAdd(servicemaptest.Service("new", "svc", "10.96.201.1", tcp80))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("new", "svc", "svc-1", tcp8080, eps(servicemaptest.Ready("10.244.9.9", "node-b"))))
	next := tr.Snapshot()
	err := b.Sync(context.Background(), prev, next)
	if !errors.Is(err, backends.ErrApply) {
		t.Fatalf("Sync = %v, want an error wrapping ErrApply", err)
	}
	if after := fake.Dump(); after != before {
		t.Fatalf("a failed transaction changed the table")
	}

	// The caller retries with the same prev; the backend knows its record
	// is void and does a full sync.
	mustSync(t, b, prev, next)
	checkMatchesRender(t, fake, nftables.Render(next, podCIDRs))
}

// TestFullSyncConvergesFromCorruptedState damages the table in several ways
// behind the backend's back; a full sync repairs all of it.
func TestFullSyncConvergesFromCorruptedState(t *testing.T) {
	o := cluster(20, 3)
	snap := o.snapshot(t, v1.IPv4Protocol)
	b, fake := newFakeBackend(t, v1.IPv4Protocol, podCIDRs)
	mustSync(t, b, nil, snap)

	fake.Lock()
	tbl := fake.Table
	m := tbl.Maps["service-ips"]
	m.Elements = m.Elements[3:] // elements lost
	for _, e := range m.Elements[:2] {
		e.Value = []string{"drop"} // elements with wrong values
	}
	m.Elements = append(m.Elements, &knftables.Element{Map: "service-ips", Key: []string{"10.1.1.1 . tcp . 1"}, Value: []string{"drop"}})
	tbl.Chains["svc-stale/chain/tcp-aaaaaaaa"] = &knftables.FakeChain{Chain: knftables.Chain{Name: "svc-stale/chain/tcp-aaaaaaaa"},
		Rules: []*knftables.Rule{{Chain: "svc-stale/chain/tcp-aaaaaaaa", Rule: "meta l4proto tcp dnat to 10.9.9.9:80"}}}
	tbl.Sets["aff-stale"] = &knftables.FakeSet{Set: knftables.Set{Name: "aff-stale", Type: "ipv4_addr"}}
	for name, c := range tbl.Chains {
		if strings.HasPrefix(name, "svc-ns1/") {
			c.Rules = c.Rules[:1] // rules lost
		}
	}
	delete(tbl.Chains, "nat-output") // a base chain lost
	fake.Unlock()

	mustSync(t, b, nil, snap)
	checkMatchesRender(t, fake, nftables.Render(snap, podCIDRs))
}

// TestSharedElements: two services claim the same external IP and port, and
// two services share a local endpoint (one hairpin element). Removing one
// owner leaves the element with the other.
func TestSharedElements(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: thisNode})
	a := servicemaptest.Service("default", "a", "10.96.0.1", tcp80, servicemaptest.ExternalIPs("192.0.2.1"))
	bSvc := servicemaptest.Service("default", "b", "10.96.0.2", tcp80, servicemaptest.ExternalIPs("192.0.2.1"))
	tr.OnServiceAdd(a)
	tr.OnServiceAdd(bSvc)
	for _, name := range []string{"a", "b"} {
		tr.OnEndpointSliceAdd(servicemaptest.Slice("default", name, name+"-1", tcp8080, eps(servicemaptest.Ready("10.244.1.1", thisNode))))
	}
	b, fake := newFakeBackend(t, v1.IPv4Protocol, nftables.Spec{})
	prev := tr.Snapshot()
	mustSync(t, b, nil, prev)
	checkMatchesRender(t, fake, nftables.Render(prev, oneTable))

	tr.OnServiceDelete(a)
	next := tr.Snapshot()
	mustSync(t, b, prev, next)
	checkMatchesRender(t, fake, nftables.Render(next, oneTable))
	fake.RLock()
	defer fake.RUnlock()
	if e := fake.Table.Maps["service-ips"].FindElement("192.0.2.1 . tcp . 80"); e == nil || !strings.Contains(e.Value[0], "ext-default/b/") {
		t.Errorf("external IP element after removing a: %v, want it to point at b", e)
	}
	if fake.Table.Sets["hairpin"].FindElement("10.244.1.1 . 10.244.1.1") == nil {
		t.Errorf("hairpin element gone although b still uses the endpoint")
	}
}

// failingDeletes fails every transaction that deletes a chain, as kernels
// before 6.2 do when the chain's last reference was a map element deleted in
// the same transaction.
type failingDeletes struct {
	*knftables.Fake
	fail bool
}

func (f *failingDeletes) Run(ctx context.Context, tx *knftables.Transaction) error {
	if f.fail && strings.Contains(tx.String(), "delete chain") {
		return errors.New("Device or resource busy")
	}
	return f.Fake.Run(ctx, tx)
}

func TestDeferredDeletes(t *testing.T) {
	o := cluster(5, 2)
	tr := o.tracker(v1.IPv4Protocol)
	fake := &failingDeletes{Fake: knftables.NewFake(knftables.IPv4Family, "lbkit")}
	b, err := nftables.New(nftables.Spec{}, nftables.Options{NFT: fake})
	if err != nil {
		t.Fatal(err)
	}
	prev := tr.Snapshot()
	mustSync(t, b, nil, prev)

	fake.fail = true
	tr.OnServiceDelete(o.services[2])
	next := tr.Snapshot()
	mustSync(t, b, prev, next)
	stale := 0
	fake.RLock()
	for name, c := range fake.Table.Chains {
		if strings.Contains(name, "/svc2/") {
			stale++
			if len(c.Rules) != 0 {
				t.Errorf("deferred chain %s still has rules", name)
			}
		}
	}
	fake.RUnlock()
	if stale == 0 {
		t.Fatalf("expected the removed service's chain to stay until a later sync")
	}

	fake.fail = false
	tr.OnServiceDelete(o.services[3])
	last := tr.Snapshot()
	mustSync(t, b, next, last)
	checkMatchesRender(t, fake.Fake, nftables.Render(last, oneTable))
}

func TestCleanup(t *testing.T) {
	b, fake := newFakeBackend(t, v1.IPv4Protocol, nftables.Spec{})
	mustSync(t, b, nil, cluster(3, 1).snapshot(t, v1.IPv4Protocol))
	if err := b.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fake.Table != nil {
		t.Errorf("table still there after Cleanup:\n%s", fake.Dump())
	}
	if err := b.Cleanup(context.Background()); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
}

// TestSyncEmpty: a nil snapshot is valid and empty: no table (a table
// exists only while it holds a service port), and a later snapshot makes
// one.
func TestSyncEmpty(t *testing.T) {
	b, fake := newFakeBackend(t, v1.IPv4Protocol, nftables.Spec{})
	mustSync(t, b, nil, nil)
	checkMatchesRender(t, fake, nftables.Render(nil, oneTable))
	snap := cluster(2, 1).snapshot(t, v1.IPv4Protocol)
	mustSync(t, b, nil, snap)
	checkMatchesRender(t, fake, nftables.Render(snap, oneTable))
}

// New refuses a Spec, or Options, that cannot mean what they say: one
// fake interface holds one table, and it is itself the transport.
func TestNewRefusesInvalidConfig(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, nftables.DefaultTable)
	type config struct {
		spec nftables.Spec
		opts nftables.Options
	}
	for name, c := range map[string]config{
		"NFT with 16 shards":      {nftables.Spec{Shards: 16}, nftables.Options{NFT: fake}},
		"NFT with a transport":    {nftables.Spec{}, nftables.Options{NFT: fake, Transport: nftables.TransportNetlink}},
		"unknown transport":       {nftables.Spec{}, nftables.Options{NFT: fake, Transport: "carrier-pigeon"}},
		"negative shards":         {nftables.Spec{Shards: -1}, nftables.Options{NFT: fake}},
		"too many shards":         {nftables.Spec{Shards: 101}, nftables.Options{NFT: fake}},
		"two mark bits":           {nftables.Spec{MasqueradeMark: 0x4001}, nftables.Options{NFT: fake}},
		"invalid cluster CIDR":    {nftables.Spec{ClusterCIDRs: []netip.Prefix{{}}}, nftables.Options{NFT: fake}},
		"invalid node-port range": {nftables.Spec{NodePortAddresses: []netip.Prefix{{}}}, nftables.Options{NFT: fake}},
		"invalid node IP":         {nftables.Spec{NodeIPs: []netip.Addr{{}}}, nftables.Options{NFT: fake}},
		"table name too long":     {nftables.Spec{Table: strings.Repeat("t", 253)}, nftables.Options{NFT: fake}},
	} {
		_, err := nftables.New(c.spec, c.opts)
		if !errors.Is(err, backends.ErrInvalidConfig) {
			t.Errorf("%s: New returned %v, want ErrInvalidConfig", name, err)
		}
	}
	for name, c := range map[string]config{
		"NFT alone":        {nftables.Spec{}, nftables.Options{NFT: fake}},
		"NFT with 1 shard": {nftables.Spec{Shards: 1}, nftables.Options{NFT: fake}},
		"every option":     {kernelOpts, nftables.Options{NFT: fake, BatchSize: 5}},
	} {
		if err := c.spec.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", name, err)
		}
		if _, err := nftables.New(c.spec, c.opts); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
