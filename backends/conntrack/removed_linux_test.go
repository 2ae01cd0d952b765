//go:build linux

package conntrack_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/conntrack"
	"github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// TestRemovedServiceFlow is kubernetes#141371 with real traffic: a client
// keeps sending UDP from one source port to a service's cluster IP; the
// service is deleted and its rules go; the flow keeps reaching the pod.
// Reconciling against the new snapshot alone cannot see it (no rule of the
// snapshot mentions the address); the sync that removed the service, through
// WithCleanup, deletes it; so does the full sync that retries it, when
// that sync failed.
func TestRemovedServiceFlow(t *testing.T) {
	t.Run("incremental", func(t *testing.T) { removedServiceFlow(t, false) })
	t.Run("failed, then full", func(t *testing.T) { removedServiceFlow(t, true) })
}

func removedServiceFlow(t *testing.T, fail bool) {
	backendtest.Require(t, "ip", "conntrack", "nft")
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 1})
	n.Serve(t, 8080)
	b0 := n.Pods()[0]
	vip := netip.MustParseAddrPort("10.96.0.10:53")
	ctx := context.Background()
	const timeout = 500 * time.Millisecond

	// The rules, by hand: what any backend would program for the service.
	rules := func(t *testing.T, dnat bool) {
		t.Helper()
		rule := "ct state new counter;"
		if dnat {
			rule += fmt.Sprintf(" ip daddr %v udp dport %d dnat to %v:8080;", vip.Addr(), vip.Port(), b0.IP)
		}
		script := "add table ip lbkt_ct; delete table ip lbkt_ct; add table ip lbkt_ct { chain pre { type nat hook prerouting priority dstnat; " + rule + " }; }"
		if out, err := n.NodeExec("nft", script); err != nil {
			t.Fatalf("nft: %v %s", err, out)
		}
	}

	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	svc := servicemaptest.Service("ns", "dns", vip.Addr().String(), []v1.ServicePort{servicemaptest.Port("dns", 53, v1.ProtocolUDP)})
	tr.OnServiceAdd(svc)
	tr.OnEndpointSliceAdd(servicemaptest.Slice("ns", "dns", "dns-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("dns", 8080, v1.ProtocolUDP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready(b0.IP.String(), "node")}))
	s1 := tr.Snapshot()
	tr.OnServiceDelete(svc)
	s2 := tr.Snapshot()

	c, err := conntrack.New(conntrack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fb := fake.New(fake.Options{})
	w := conntrack.WithCleanup(fb, c)
	inNode := func(f func() error) {
		t.Helper()
		if err := n.InNode(f); err != nil {
			t.Fatal(err)
		}
	}
	inNode(func() error { return w.Sync(ctx, nil, s1) })
	rules(t, true)
	if got, err := n.DialUDP(ctx, 40071, vip, timeout); err != nil || got != b0.Name {
		t.Fatalf("before: %q, %v; want %s", got, err, b0.Name)
	}

	rules(t, false) // the service is deleted: its rules go
	if got, err := n.DialUDP(ctx, 40071, vip, timeout); err != nil || got != b0.Name {
		t.Fatalf("stale flow: %q, %v; want %s still (is conntrack not keeping the flow?)", got, err, b0.Name)
	}
	var deleted int
	inNode(func() error { deleted, err = c.Reconcile(s2); return err })
	if deleted != 0 {
		t.Fatalf("Reconcile(new snapshot) deleted %d flows; the test expects it blind to the removed service", deleted)
	}
	if got, err := n.DialUDP(ctx, 40071, vip, timeout); err != nil || got != b0.Name {
		t.Fatalf("after Reconcile alone: %q, %v; want the stale flow still there", got, err)
	}

	if fail {
		fb.FailNext(errors.New("netlink: device busy"))
		if err := n.InNode(func() error { return w.Sync(ctx, s1, s2) }); err == nil {
			t.Fatal("the injected failure did not fail the sync")
		}
		if got, err := n.DialUDP(ctx, 40071, vip, timeout); err != nil || got != b0.Name {
			t.Fatalf("after a failed sync: %q, %v; want the stale flow still there", got, err)
		}
		inNode(func() error { return w.Sync(ctx, nil, s2) }) // the retry
	} else {
		inNode(func() error { return w.Sync(ctx, s1, s2) }) // the sync that removes the service
	}
	if got, err := n.DialUDP(ctx, 40071, vip, timeout); !backendtest.IsTimeout(err) {
		t.Errorf("after the sync that removed the service: %q, %v; want no answer (flow deleted, no rule)", got, err)
	}
}
