//go:build linux

package iptables_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// kernelBench programs n services x 10 endpoints into a throwaway namespace
// with the given flavour and returns what a benchmark needs.
type kernelBench struct {
	n       *backendtest.Network
	b       *iptables.Backend
	tr      *servicemap.Tracker
	slices  []*discoveryv1.EndpointSlice
	applied *servicemap.Snapshot
}

func newKernelBench(b *testing.B, services int, flavour iptables.Flavour) *kernelBench {
	backendtest.Require(b, "ip", "iptables-"+string(flavour)+"-restore")
	n := backendtest.NewNetwork(b, backendtest.NetworkOptions{Pods: 3})
	be, err := iptables.New(iptables.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}, iptables.Options{Flavour: flavour})
	if err != nil {
		b.Fatal(err)
	}
	tr, slices := bigCluster(services, 10)
	return &kernelBench{n: n, b: be, tr: tr, slices: slices}
}

func (k *kernelBench) sync(b *testing.B, prev, next *servicemap.Snapshot) {
	b.Helper()
	if err := k.n.InNode(func() error { return k.b.Sync(context.Background(), prev, next) }); err != nil {
		b.Fatal(err)
	}
	k.applied = next
}

// benchColdSync also reports the heap before the sync (the tracker and its
// snapshot, in base-heap-MB) and its peak during the syncs (peak-heap-MB):
// the difference is what a full sync holds at once. It runs the programs
// through timedExec and reports where the time went: in iptables-restore
// (restore-s, which includes the kernel's commits), in listing chains and
// jumps (list-s), and the rest, lbkit's own (rest-s).
func benchColdSync(b *testing.B, flavour iptables.Flavour) {
	services := benchServices()
	b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
		b.ReportAllocs()
		k := newKernelBench(b, services, flavour)
		snap := k.tr.Snapshot()
		runtime.GC()
		stop := heapPeak()
		base := stop()
		var peak uint64
		var total, restore, list time.Duration
		timer := &timedExec{}
		for b.Loop() {
			b.StopTimer()
			if err := k.n.InNode(func() error { return k.b.Cleanup(context.Background()) }); err != nil {
				b.Fatal(err)
			}
			// A fresh backend, as after a restart: nothing to reuse.
			be, err := iptables.New(iptables.Spec{ClusterCIDRs: []netip.Prefix{k.n.ClusterCIDR()}}, iptables.Options{Flavour: flavour, Exec: timer})
			if err != nil {
				b.Fatal(err)
			}
			k.b = be
			runtime.GC()
			stop := heapPeak()
			timer.reset()
			start := time.Now()
			b.StartTimer()
			k.sync(b, nil, snap)
			b.StopTimer()
			total += time.Since(start)
			peak = max(peak, stop())
			restore, list = restore+timer.restore, list+timer.list
			b.StartTimer()
		}
		b.ReportMetric(float64(base)/1e6, "base-heap-MB")
		b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
		runs := float64(b.N)
		b.ReportMetric(restore.Seconds()/runs, "restore-s")
		b.ReportMetric(list.Seconds()/runs, "list-s")
		b.ReportMetric((total-restore-list).Seconds()/runs, "rest-s")
	})
}

// BenchmarkKernelColdSync loads 10,000 services x 10 endpoints (100 with
// -short) into an empty kernel with iptables-nft.
func BenchmarkKernelColdSync(b *testing.B) { benchColdSync(b, iptables.FlavourNFT) }

// BenchmarkKernelColdSyncLegacy is the same with iptables-legacy.
func BenchmarkKernelColdSyncLegacy(b *testing.B) { benchColdSync(b, iptables.FlavourLegacy) }

func benchUpdate(b *testing.B, flavour iptables.Flavour) {
	b.Run("services=10000", func(b *testing.B) {
		k := newKernelBench(b, 10000, flavour)
		prev := k.tr.Snapshot()
		k.sync(b, nil, prev)
		target := k.slices[5000]
		flipped := target.DeepCopy()
		flipped.Endpoints[3].Conditions.Ready = servicemaptest.Ptr(false)
		versions := [2]*discoveryv1.EndpointSlice{flipped, target}
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			k.tr.OnEndpointSliceUpdate(nil, versions[i%2])
			next := k.tr.Snapshot()
			b.StartTimer()
			k.sync(b, prev, next)
			prev = next
		}
	})
}

// BenchmarkKernelUpdate applies a one-endpoint change (a partial restore)
// on top of 10,000 loaded services.
func BenchmarkKernelUpdate(b *testing.B) { benchUpdate(b, iptables.FlavourNFT) }

// BenchmarkKernelUpdateLegacy is the same with iptables-legacy.
func BenchmarkKernelUpdateLegacy(b *testing.B) { benchUpdate(b, iptables.FlavourLegacy) }

// BenchmarkConnect measures a TCP connection through a service VIP (connect,
// one reply, close) with 100 and with 10,000 services programmed: iptables
// walks the SERVICES chain rule by rule, so the cost grows with the
// number of services.
func BenchmarkConnect(b *testing.B) {
	for _, services := range []int{100, 10000} {
		b.Run(fmt.Sprintf("services=%d", services), func(b *testing.B) {
			k := newKernelBench(b, services, iptables.FlavourNFT)
			k.n.Serve(b, 8080)
			// The last service (matched last in SERVICES) points at the
			// real servers.
			last := k.slices[services-1]
			service := last.Labels[discoveryv1.LabelServiceName]
			var eps []servicemaptest.Endpoint
			for _, be := range k.n.Pods() {
				eps = append(eps, servicemaptest.Ready(be.IP.String(), "other"))
			}
			k.tr.OnEndpointSliceUpdate(nil, servicemaptest.Slice(last.Namespace, service, last.Name, last.Ports, eps))
			snap := k.tr.Snapshot()
			k.sync(b, nil, snap)
			vip := snap.Service(last.Namespace, service)[0].ClusterIP
			dst := netip.AddrPortFrom(vip, 80)
			ctx := context.Background()
			for b.Loop() {
				if _, err := k.n.DialTCP(ctx, netip.Addr{}, dst, 2*time.Second); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// timedExec runs the iptables programs as the backend does and adds up the
// time spent in restores and in the rest (listing).
type timedExec struct {
	mu            sync.Mutex
	restore, list time.Duration
}

func (t *timedExec) reset() { t.mu.Lock(); t.restore, t.list = 0, 0; t.mu.Unlock() }

func (t *timedExec) Run(ctx context.Context, program string, args []string, stdin io.Reader) ([]byte, error) {
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	t.mu.Lock()
	if strings.HasSuffix(program, "-restore") {
		t.restore += d
	} else {
		t.list += d
	}
	t.mu.Unlock()
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", program, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
