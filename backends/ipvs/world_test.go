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
)

// world is a Backend on fakes, fed by a Tracker.
type world struct {
	t    *testing.T
	ipvs *ipvsfake.IPVS
	host *ipvsfake.Host
	nft  *knftables.Fake
	spec ipvs.Spec
	opts ipvs.Options
	b    *ipvs.Backend
	tr   *servicemap.Tracker
	prev *servicemap.Snapshot
}

func newWorld(t *testing.T, spec ipvs.Spec) *world {
	t.Helper()
	w := &world{
		t:    t,
		ipvs: ipvsfake.NewIPVS(),
		host: ipvsfake.NewHost(netip.MustParseAddr(nodeIP), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("fe80::1")),
		nft:  knftables.NewFake(knftables.IPv4Family, ipvs.DefaultTable),
		tr:   servicemap.NewTracker(servicemap.Options{NodeName: thisNode}),
	}
	w.spec, w.opts = spec, ipvs.Options{IPVS: w.ipvs, Host: w.host, NFT: w.nft}
	w.restart()
	return w
}

// restart makes a new Backend on the same kernel, as a restarted process.
func (w *world) restart() {
	w.t.Helper()
	b, err := ipvs.New(w.spec, w.opts)
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

// mustSetConns sets a real server's connection counts, as traffic would.
func mustSetConns(t *testing.T, f *ipvsfake.IPVS, k ipvs.Key, rs netip.AddrPort, active, inactive int) {
	t.Helper()
	if err := f.SetConns(k, rs, active, inactive); err != nil {
		t.Fatalf("SetConns(%v, %v): %v", k, rs, err)
	}
}
