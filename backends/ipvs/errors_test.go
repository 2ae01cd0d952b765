//go:build linux

package ipvs_test

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/backends/ipvs/ipvsfake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// A Sync the kernel refuses says why, through errors.Is: EPERM is a
// missing privilege, EOPNOTSUPP a missing feature, anything else a refused
// change; all are ErrApply.
func TestSyncErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		want  error
	}{
		{syscall.EPERM, backends.ErrPermission},
		{syscall.EOPNOTSUPP, backends.ErrNotSupported},
		{syscall.EINVAL, nil},
	} {
		w := newWorld(t, ipvs.Spec{})
		w.apply(servicemaptest.Service("default", "a", "10.96.0.10", tcp80))
		w.ipvs.FailNext("add 10.96.0.10:80/TCP", tc.errno)
		err := w.b.Sync(context.Background(), nil, w.tr.Snapshot())
		if !errors.Is(err, backends.ErrApply) || !errors.Is(err, tc.errno) {
			t.Errorf("%v: Sync = %v, want ErrApply wrapping the errno", tc.errno, err)
		}
		for _, s := range []error{backends.ErrPermission, backends.ErrNotSupported, backends.ErrTimeout} {
			if got := errors.Is(err, s); got != (s == tc.want) {
				t.Errorf("%v: errors.Is(%v) = %v", tc.errno, s, got)
			}
		}
	}
}

// TestNewInvalidSpec: New refuses what Validate refuses, with
// backends.ErrInvalidConfig, before touching anything; a Backend of a
// valid spec syncs.
func TestNewInvalidSpec(t *testing.T) {
	for _, tc := range specCases {
		t.Run(tc.name, func(t *testing.T) {
			fake, host := ipvsfake.NewIPVS(), ipvsfake.NewHost(netip.MustParseAddr(nodeIP))
			table := tc.spec.Table
			if table == "" {
				table = ipvs.DefaultTable
			}
			opts := ipvs.Options{IPVS: fake, Host: host, NFT: knftables.NewFake(knftables.IPv4Family, table)}
			b, err := ipvs.New(tc.spec, opts)
			if !tc.valid {
				if !errors.Is(err, backends.ErrInvalidConfig) || b != nil {
					t.Fatalf("New = %v, %v; want an error wrapping ErrInvalidConfig", b, err)
				}
				if calls := fake.TakeCalls(); len(calls) != 0 {
					t.Errorf("New of an invalid spec changed IPVS: %v", calls)
				}
				return
			}
			if err != nil {
				t.Fatalf("New = %v; want a backend", err)
			}
			tr := servicemap.NewTracker(servicemap.Options{NodeName: thisNode})
			tr.OnServiceAdd(servicemaptest.Service("default", "a", "10.96.0.10", tcp80))
			if err := b.Sync(context.Background(), nil, tr.Snapshot()); err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if got := fake.Keys(); len(got) != 1 {
				t.Errorf("virtual servers %v; want one", got)
			}
		})
	}
}
