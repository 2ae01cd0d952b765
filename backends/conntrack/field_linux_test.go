//go:build linux

package conntrack_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/conntrack"
	"github.com/lbkit/lbkit/backends/netlab"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// TestKubernetes101607StaleTCP: an established TCP connection whose
// endpoint is removed from the Service (the pod gone, not merely
// terminating). By default, as kube-proxy, its conntrack entry keeps it
// going to the old address (which, with the pod gone, hangs it:
// kubernetes#101607, #104098); with Options.ReapTCP the entry is deleted in
// the sync that removes the endpoint, and the connection's next packet is
// reset instead, so the client notices at once. A connection whose endpoint
// only turns terminating is never touched.
func TestKubernetes101607StaleTCP(t *testing.T) {
	for _, reap := range []bool{false, true} {
		name := "default"
		if reap {
			name = "ReapTCP"
		}
		t.Run(name, func(t *testing.T) { staleTCP(t, reap) })
	}
}

func staleTCP(t *testing.T, reap bool) {
	backendtest.Require(t, "ip", "nft", "conntrack")
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 3})
	n.ServeEcho(t, 9000)
	bes := n.Pods()
	vip := netip.MustParseAddrPort("10.96.0.30:9000")
	ctx := context.Background()
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	ports := []discoveryv1.EndpointPort{servicemaptest.SlicePort("echo", 9000, v1.ProtocolTCP)}
	tr.OnServiceAdd(servicemaptest.Service("t", "echo", vip.Addr().String(), []v1.ServicePort{servicemaptest.Port("echo", 9000, v1.ProtocolTCP)}))
	setEndpoints := func(eps ...servicemaptest.Endpoint) {
		tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice("t", "echo", "echo-1", ports, eps))
	}
	setEndpoints(servicemaptest.Ready(bes[0].IP.String(), "node"), servicemaptest.Ready(bes[1].IP.String(), "node"))

	var b backends.Interface
	var prev *servicemap.Snapshot
	sync := func() {
		t.Helper()
		next := tr.Snapshot()
		if err := n.InNode(func() error {
			return b.(backends.ChangesSyncer).SyncChanges(ctx, prev, next, ptr(servicemap.Diff(prev, next)))
		}); err != nil {
			t.Fatal(err)
		}
		prev = next
	}
	if err := n.InNode(func() error {
		nft, err := nftables.New(nftables.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}, nftables.Options{})
		if err != nil {
			return err
		}
		c, err := conntrack.New(conntrack.Options{ReapTCP: reap})
		if err != nil {
			return err
		}
		b = conntrack.WithCleanup(nft, c)
		prev = tr.Snapshot()
		return b.Sync(ctx, nil, prev)
	}); err != nil {
		t.Fatal(err)
	}
	defer n.InNode(func() error { return b.Cleanup(context.Background()) })

	// Open connections until one lands on each of b0 and b1.
	streams := map[string]*netlab.Stream{}
	for i := 0; len(streams) < 2 && i < 100; i++ {
		s, err := n.DialStream(ctx, vip, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Ask("hello", 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if streams[got] != nil {
			s.Close()
			continue
		}
		streams[got] = s
		defer s.Close()
	}
	if len(streams) != 2 {
		t.Fatalf("connections reached %v, want b0 and b1", streams)
	}

	// b0 terminates and b2 comes: b0's connection is left alone either way.
	setEndpoints(servicemaptest.Terminating(bes[0].IP.String(), "node"), servicemaptest.Ready(bes[1].IP.String(), "node"), servicemaptest.Ready(bes[2].IP.String(), "node"))
	sync()
	if got, err := streams[bes[0].Name].Ask("terminating", 2*time.Second); err != nil || got != bes[0].Name {
		t.Fatalf("connection to a terminating endpoint: %q, %v; want it to keep working", got, err)
	}

	// b0 is removed from the slice (its pod is gone).
	setEndpoints(servicemaptest.Ready(bes[1].IP.String(), "node"), servicemaptest.Ready(bes[2].IP.String(), "node"))
	sync()
	got, err := streams[bes[0].Name].Ask("removed", 2*time.Second)
	if reap {
		if err == nil || backendtest.IsTimeout(err) {
			t.Errorf("with ReapTCP, the connection to the removed endpoint answered %q, %v; want it reset at once", got, err)
		}
	} else if err != nil || got != bes[0].Name {
		t.Errorf("by default, the connection to the removed endpoint: %q, %v; want it to keep reaching %s (kube-proxy's behaviour)", got, err, bes[0].Name)
	}
	// The connection to b1, which stays, is never touched.
	if got, err := streams[bes[1].Name].Ask("kept", 2*time.Second); err != nil || got != bes[1].Name {
		t.Errorf("connection to an endpoint that stays: %q, %v", got, err)
	}
}

func ptr[T any](v T) *T { return &v }
