//go:build linux

package conntrack_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/conntrack"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// plain is a backend with none of the optional interfaces.
type plain struct{ backends.Interface }

// WithCleanup hides none of the wrapped backend's abilities, and claims
// none it lacks. The snapshots hold TCP services only, so the cleanup has
// no flow to look for and never reads the host's table.
func TestWithCleanupForwards(t *testing.T) {
	c, err := conntrack.New(conntrack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fb := fake.New(fake.Options{})
	w := conntrack.WithCleanup(fb, c)
	dc, ok := w.(backends.DriftChecker)
	if !ok {
		t.Fatal("WithCleanup(fake) is not a DriftChecker")
	}
	cs, ok := w.(backends.ChangesSyncer)
	if !ok {
		t.Fatal("WithCleanup(fake) is not a ChangesSyncer")
	}
	if _, ok := conntrack.WithCleanup(plain{fb}, c).(backends.DriftChecker); ok {
		t.Error("WithCleanup of a backend without Drifted claims to be a DriftChecker")
	}
	if _, ok := conntrack.WithCleanup(plain{fb}, c).(backends.ChangesSyncer); !ok {
		t.Error("WithCleanup of a plain backend is not a ChangesSyncer")
	}

	tr := servicemap.NewTracker(servicemap.Options{})
	tr.OnServiceAdd(servicemaptest.Service("ns", "web", "10.96.0.30", []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	s1 := tr.Snapshot()
	tr.OnServiceAdd(servicemaptest.Service("ns", "api", "10.96.0.31", []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	s2 := tr.Snapshot()
	ctx := context.Background()
	if err := w.Sync(ctx, nil, s1); err != nil {
		t.Fatal(err)
	}
	d := servicemap.Diff(s1, s2)
	if err := cs.SyncChanges(ctx, s1, s2, &d); err != nil {
		t.Fatal(err)
	}
	if recs := fb.Syncs(); len(recs) != 2 || !recs[1].Given {
		t.Errorf("fake's records = %+v, want the second given the Diff", recs)
	}
	if got, want := fb.Dump(), fake.Render(s2); got != want {
		t.Errorf("Dump() = %q, want %q", got, want)
	}

	if drifted, err := dc.Drifted(ctx); err != nil || drifted {
		t.Errorf("Drifted before the flush = %v, %v", drifted, err)
	}
	fb.Flush()
	if drifted, err := dc.Drifted(ctx); err != nil || !drifted {
		t.Errorf("Drifted after the flush = %v, %v; want true", drifted, err)
	}
}

// TestWithCleanupOnlyAfterSuccess: as kube-proxy's proxiers, which return
// before their conntrack cleanup when the rules failed to apply, a failed
// Sync deletes no flow (the old rules may still lead to the old endpoint);
// the next successful one does.
func TestWithCleanupOnlyAfterSuccess(t *testing.T) {
	backendtest.Require(t, "ip", "conntrack")
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 1})
	ns, err := netns.GetFromName(n.NodeNS())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, syscall.NETLINK_NETFILTER)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := conntrack.New(conntrack.Options{Handle: h})
	if err != nil {
		t.Fatal(err)
	}
	stale := insertedFlow{"udp", 40020, netip.MustParseAddrPort("10.96.0.10:53"), netip.MustParseAddrPort("10.244.1.13:8080"), true}
	if err := stale.insert(n); err != nil {
		t.Fatal(err)
	}
	fb := fake.New(fake.Options{})
	w := conntrack.WithCleanup(fb, c)
	snap := dnsSnapshot(t, netip.MustParseAddr("10.244.1.10"))
	ctx := context.Background()

	fb.FailNext(errors.New("injected"))
	if err := w.Sync(ctx, nil, snap); err == nil {
		t.Fatal("Sync with an injected failure succeeded")
	}
	if !slices.Contains(sports(t, n), 40020) {
		t.Fatal("a failed Sync deleted the stale flow")
	}
	if err := w.Sync(ctx, nil, snap); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(sports(t, n), 40020) {
		t.Error("the stale flow survived a successful Sync")
	}
}
