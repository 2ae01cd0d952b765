package nftables_test

import (
	"context"
	"testing"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// incrementalChurn drives a Backend through a full sync and then
// incremental syncs of every kind (an endpoint not ready, a service
// removed, one added, a table emptied and refilled) and fails if any
// incremental sync made a listing request (kubernetes#139513: listing the
// whole table on every sync is what made 44,000 services take minutes).
// It returns the last snapshot synced.
func incrementalChurn(t *testing.T, be *nftables.Backend) *servicemap.Snapshot {
	t.Helper()
	ctx := context.Background()
	o := cluster(40, 3)
	tr := o.tracker(v1.IPv4Protocol)
	prev := tr.Snapshot()
	before, _ := be.KernelIOForTest()
	mustSync(t, be, nil, prev)
	if d, _ := be.KernelIOForTest(); d == before {
		t.Fatal("a full sync made no listing request: the count counts nothing")
	}
	step := func(what string, change func()) {
		t.Helper()
		change()
		next := tr.Snapshot()
		d0, m0 := be.KernelIOForTest()
		if err := be.Sync(ctx, prev, next); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		d1, m1 := be.KernelIOForTest()
		if d1 != d0 {
			t.Errorf("%s: the incremental sync made %d listing requests", what, d1-d0)
		}
		if m1 != m0 {
			t.Logf("%s: %d netlink messages", what, m1-m0)
		}
		prev = next
	}
	step("endpoint not ready", func() {
		es := o.slices[3].DeepCopy()
		es.Endpoints[1].Conditions.Ready = servicemaptest.Ptr(false)
		tr.OnEndpointSliceUpdate(o.slices[3], es)
	})
	step("service removed", func() { tr.OnServiceDelete(o.services[5]) })
	step("service added", func() {
		tr.OnServiceAdd(servicemaptest.Service("new", "svc", "10.96.201.1", tcp80))
		tr.OnEndpointSliceAdd(servicemaptest.Slice("new", "svc", "svc-1", tcp8080, eps(servicemaptest.Ready("10.244.9.9", "node-b"))))
	})
	step("all but one service removed (tables emptied and deleted)", func() {
		for _, s := range o.services[6:] {
			tr.OnServiceDelete(s)
		}
	})
	step("services back (tables created)", func() {
		for _, s := range o.services[6:] {
			tr.OnServiceAdd(s)
		}
	})
	return prev
}

// TestIncrementalSyncNeverLists checks it against the kernel, in a
// throwaway namespace, with the default options (netlink, 16 tables).
func TestIncrementalSyncNeverLists(t *testing.T) {
	requireKernel(t)
	inThrowawayNetns(t, "nolist", func() {
		be, err := nftables.New(kernelOpts, nftables.Options{})
		if err != nil {
			t.Fatal(err)
		}
		last := incrementalChurn(t, be)
		checkKernelMatchesRender(t, knftables.IPv4Family, last, kernelOpts)
	})
}

// TestIncrementalSyncNeverListsNFT checks it through Options.NFT (a fake
// table, so it runs without root).
func TestIncrementalSyncNeverListsNFT(t *testing.T) {
	be, err := nftables.New(nftables.Spec{ClusterCIDRs: podCIDRs.ClusterCIDRs}, nftables.Options{NFT: knftables.NewFake(knftables.IPv4Family, "lbkit")})
	if err != nil {
		t.Fatal(err)
	}
	incrementalChurn(t, be)
}
