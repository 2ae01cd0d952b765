package nftables_test

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// kernelOpts exercise every option.
var kernelOpts = nftables.Spec{
	ClusterCIDRs:      mustPrefixes("10.244.0.0/16", "fd00:10:244::/56"),
	NodePortAddresses: mustPrefixes("192.168.0.0/16", "2001:db8::/64"),
	NodeIPs:           []netip.Addr{netip.MustParseAddr("192.168.0.10")},
}

// everyFeature merges the golden cases of one family into one input.
func everyFeature(family v1.IPFamily) objects {
	var o objects
	for _, tc := range goldenCases {
		if (tc.family == v1.IPv6Protocol) == (family == v1.IPv6Protocol) {
			o.services = append(o.services, tc.objs.services...)
			o.slices = append(o.slices, tc.objs.slices...)
		}
	}
	return o
}

// kernelView is what the kernel holds, in a form Render's text can be
// brought to as well: object names, rules per chain, elements of the shared
// containers.
type kernelView struct {
	Objects  []string
	Rules    map[string]int
	Elements map[string][]string
}

var objectLine = regexp.MustCompile(`^\t(chain|set|map) (\S+) \{$`)

// sharedContainers are the maps and sets whose elements are compared.
var sharedContainers = map[string]string{
	"service-ips": "map", "service-nodeports": "map", "no-endpoint-services": "map",
	"no-endpoint-nodeports": "map", "firewall-ips": "map", "hairpin": "set", "health-check-nodeports": "set",
	"cluster-ips": "set",
}

// ourTables lists the family's lbkit tables (one per shard in use).
func ourTables(t *testing.T, family knftables.Family) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(run(t, "nft", "list", "tables", string(family)), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && (f[2] == "lbkit" || strings.HasPrefix(f[2], "lbkit-")) {
			out = append(out, f[2])
		}
	}
	slices.Sort(out)
	return out
}

func viewKernel(t *testing.T, family knftables.Family) kernelView {
	t.Helper()
	v := kernelView{Rules: map[string]int{}, Elements: map[string][]string{}}
	for _, table := range ourTables(t, family) {
		viewKernelTable(t, &v, family, table)
	}
	slices.Sort(v.Objects)
	return v
}

func viewKernelTable(t *testing.T, v *kernelView, family knftables.Family, table string) {
	t.Helper()
	var chain string
	for _, line := range strings.Split(run(t, "nft", "list", "table", string(family), table), "\n") {
		if m := objectLine.FindStringSubmatch(line); m != nil {
			v.Objects = append(v.Objects, table+" "+m[1]+" "+m[2])
			chain = ""
			if m[1] == "chain" {
				chain = table + " " + m[2]
				v.Rules[chain] = 0
			}
			continue
		}
		trimmed := strings.TrimSpace(line)
		if chain != "" && trimmed != "" && trimmed != "}" && !strings.HasPrefix(trimmed, "type ") {
			v.Rules[chain]++
		}
	}
	nft, err := knftables.New(family, table)
	if err != nil {
		t.Fatal(err)
	}
	for name, kind := range sharedContainers {
		elems, err := nft.ListElements(context.Background(), kind, name)
		if err != nil {
			t.Fatalf("list %s %s %s: %v", table, kind, name, err)
		}
		var lines []string
		for _, e := range elems {
			l := "element " + strings.Join(e.Key, " . ")
			if len(e.Value) > 0 {
				l += " : " + strings.Join(e.Value, " . ")
			}
			lines = append(lines, l)
		}
		slices.Sort(lines)
		v.Elements[table+" "+name] = lines
	}
}

func viewRender(t *testing.T, text string) kernelView {
	v := kernelView{Rules: map[string]int{}, Elements: map[string][]string{}}
	for key, lines := range renderState(t, text) {
		v.Objects = append(v.Objects, key)
		table, rest, _ := strings.Cut(key, " ")
		kind, name, _ := strings.Cut(rest, " ")
		if kind == "chain" {
			n := 0
			for _, l := range lines {
				if !strings.HasPrefix(l, "type ") {
					n++
				}
			}
			v.Rules[table+" "+name] = n
		}
		if _, shared := sharedContainers[name]; shared {
			var elems []string
			for _, l := range lines {
				if strings.HasPrefix(l, "element ") {
					elems = append(elems, l)
				}
			}
			v.Elements[table+" "+name] = elems
		}
	}
	slices.Sort(v.Objects)
	return v
}

func checkKernelMatchesRender(t *testing.T, family knftables.Family, snap *servicemap.Snapshot, opts nftables.Spec) {
	t.Helper()
	if diff := cmp.Diff(viewRender(t, nftables.Render(snap, opts)), viewKernel(t, family)); diff != "" {
		t.Fatalf("kernel table differs from Render (-render +kernel):\n%s", diff)
	}
}

// TestKernelLoad programs a snapshot using every feature into a real
// kernel, in a throwaway network namespace, through full, incremental and
// again full syncs, then cleans up, leaving a foreign table alone.
func TestKernelLoad(t *testing.T) {
	requireKernel(t)
	inThrowawayNetns(t, "load", func() {
		ctx := context.Background()
		run(t, "nft", "add table ip other")
		run(t, "nft", "add chain ip other keep")

		// Render's text is valid nft input.
		for _, fam := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
			opts := kernelOpts
			opts.Table = "render-check"
			runStdin(t, nftables.Render(everyFeature(fam).snapshot(t, fam), opts), "nft", "-c", "-f", "-")
		}

		b, err := nftables.New(kernelOpts, nftables.Options{})
		if err != nil {
			t.Fatal(err)
		}
		o := everyFeature(v1.IPv4Protocol)
		tr := o.tracker(v1.IPv4Protocol)
		snap1 := tr.Snapshot()
		mustSync(t, b, nil, snap1)
		checkKernelMatchesRender(t, knftables.IPv4Family, snap1, kernelOpts)
		listing := run(t, "nft", "list", "ruleset", "ip")
		for _, want := range []string{
			"numgen random mod 3 0 meta l4proto tcp dnat to 10.244.1.5:8080",
			"update @aff-", "fib saddr type local goto svc-shop/front/https/tcp-",
			"ip daddr . meta l4proto . th dport vmap @service-ips",
			"ip saddr != @fwsrc-shop/front/https/tcp-", "masquerade fully-random",
			"flags dynamic,timeout", "timeout 10m",
		} {
			if !strings.Contains(listing, want) {
				t.Errorf("nft list ruleset ip lacks %q", want)
			}
		}

		// Incremental: an endpoint goes, a service goes, one comes.
		es := o.slices[0].DeepCopy()
		es.Endpoints = es.Endpoints[1:]
		tr.OnEndpointSliceUpdate(o.slices[0], es)
		tr.OnServiceDelete(o.services[len(o.services)-1])
		tr.OnServiceAdd(servicemaptest.Service("new", "svc", "10.96.201.1", tcp80, nodePort(80, 30201)))
		tr.OnEndpointSliceAdd(servicemaptest.Slice("new", "svc", "svc-1", tcp8080, eps(servicemaptest.Ready("10.244.9.9", "node-b"))))
		snap2 := tr.Snapshot()
		mustSync(t, b, snap1, snap2)
		checkKernelMatchesRender(t, knftables.IPv4Family, snap2, kernelOpts)

		// A full resync of the same state, and of a different one.
		mustSync(t, b, nil, snap2)
		checkKernelMatchesRender(t, knftables.IPv4Family, snap2, kernelOpts)
		small := cluster(3, 2).snapshot(t, v1.IPv4Protocol)
		mustSync(t, b, nil, small)
		checkKernelMatchesRender(t, knftables.IPv4Family, small, kernelOpts)

		// IPv6 lives in its own table.
		b6, err := nftables.New(kernelOpts, nftables.Options{})
		if err != nil {
			t.Fatal(err)
		}
		snap6 := everyFeature(v1.IPv6Protocol).snapshot(t, v1.IPv6Protocol)
		mustSync(t, b6, nil, snap6)
		checkKernelMatchesRender(t, knftables.IPv6Family, snap6, kernelOpts)

		if err := b.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		tables := run(t, "nft", "list", "tables")
		if strings.Contains(tables, "lbkit") || !strings.Contains(tables, "table ip other") {
			t.Errorf("after Cleanup, nft list tables says:\n%s", tables)
		}
		if !strings.Contains(run(t, "nft", "list", "table", "ip", "other"), "chain keep") {
			t.Errorf("Cleanup touched the foreign table")
		}
	})
}

// BenchmarkKernelColdSync measures a full sync into an empty kernel (the
// tables deleted between iterations, untimed): 10,000 services x 10
// endpoints, and the shapes users report (large: LBKIT_BENCH_LARGE=1).
func BenchmarkKernelColdSync(b *testing.B) {
	b.Run("services=10000", func(b *testing.B) { benchKernelColdSyncSized(b, shape{10000, 10, false}, 0) })
	for _, s := range reportedShape[1:] {
		b.Run(s.String(), func(b *testing.B) { benchKernelColdSyncSized(b, s, 0) })
	}
}

// BenchmarkKernelColdSyncBatch compares batch sizes for the same load.
func BenchmarkKernelColdSyncBatch(b *testing.B) {
	for _, batch := range []int{250, 1000, 2500, 10000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchKernelColdSyncSized(b, shape{10000, 10, false}, batch) })
	}
}

func benchKernelColdSyncSized(b *testing.B, s shape, batch int) {
	requireKernel(b)
	skipLarge(b, s.large)
	snap := cluster(s.services, s.endpoints).snapshot(b, v1.IPv4Protocol)
	inThrowawayNetns(b, "bench", func() {
		ctx := context.Background()
		be, err := nftables.New(nftables.Spec{ClusterCIDRs: podCIDRs.ClusterCIDRs}, nftables.Options{BatchSize: batch})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			if err := be.Cleanup(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := be.Sync(ctx, nil, snap); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkKernelUpdate measures a one-endpoint change (10 endpoints per
// service, one turning not-ready) applied to a loaded kernel (default
// options: netlink, 16 tables): Diff, the transaction, and the kernel's
// commit. It reports the netlink messages and the listing requests per
// update (the latter must be 0).
func BenchmarkKernelUpdate(b *testing.B) {
	for _, s := range []shape{{1000, 10, false}, {10000, 10, false}, {50000, 10, true}} {
		b.Run(fmt.Sprintf("services=%d", s.services), func(b *testing.B) {
			skipLarge(b, s.large)
			benchKernelUpdate(b, s.services, nftables.Spec{ClusterCIDRs: podCIDRs.ClusterCIDRs}, "")
		})
	}
}

// BenchmarkKernelUpdateShapes compares the same update with each transport
// and with one table or sixteen: what each design choice is worth.
func BenchmarkKernelUpdateShapes(b *testing.B) {
	for _, tr := range []nftables.Transport{nftables.TransportNetlink, nftables.TransportNFT} {
		for _, shards := range []int{1, 16} {
			b.Run(fmt.Sprintf("transport=%s/shards=%d", tr, shards), func(b *testing.B) {
				benchKernelUpdate(b, 10000, nftables.Spec{ClusterCIDRs: podCIDRs.ClusterCIDRs, Shards: shards}, tr)
			})
		}
	}
}

func benchKernelUpdate(b *testing.B, n int, spec nftables.Spec, tr nftables.Transport) {
	requireKernel(b)
	a, c := oneEndpointApart(b, n)
	inThrowawayNetns(b, "bench", func() {
		ctx := context.Background()
		be, err := nftables.New(spec, nftables.Options{Transport: tr})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := be.Sync(ctx, nil, a); err != nil {
			b.Fatal(err)
		}
		b.Logf("initial full sync: %v", time.Since(start))
		dumps0, msgs0 := be.KernelIOForTest()
		prev, next := a, c
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if err := be.Sync(ctx, prev, next); err != nil {
				b.Fatal(err)
			}
			prev, next = next, prev
		}
		b.StopTimer()
		dumps, msgs := be.KernelIOForTest()
		if tr != nftables.TransportNFT { // nft's messages are not seen
			b.ReportMetric(float64(msgs-msgs0)/float64(b.N), "messages/update")
		}
		b.ReportMetric(float64(dumps-dumps0)/float64(b.N), "dumps/update")
		if dumps != dumps0 {
			b.Fatalf("incremental updates made %d listing requests", dumps-dumps0)
		}
		// prev is what the kernel should hold now.
		checkChangedChain(b, prev, spec, n/2)
	})
}

// checkChangedChain checks that the kernel's cluster chain of service i
// (of servicemaptest.Cluster) DNATs to the endpoints Render says: the benchmark's
// updates really landed.
func checkChangedChain(b *testing.B, snap *servicemap.Snapshot, spec nftables.Spec, i int) {
	b.Helper()
	prefix := fmt.Sprintf("chain svc-ns%d/svc%d/", i%50, i)
	var table, chain string
	var want []string
	inChain := false
	for _, line := range strings.Split(nftables.Render(snap, spec), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "table "):
			table = strings.Fields(line)[2]
		case strings.HasPrefix(line, prefix):
			chain, inChain = strings.Fields(line)[1], true
		case inChain && line == "}":
			inChain = false
		case inChain && strings.Contains(line, "dnat to "):
			want = append(want, line[strings.Index(line, "dnat to "):])
		}
		if chain != "" && !inChain {
			break
		}
	}
	var got []string
	for _, line := range strings.Split(run(b, "nft", "list", "chain", "ip", table, chain), "\n") {
		if i := strings.Index(line, "dnat to "); i >= 0 {
			got = append(got, strings.TrimSpace(line[i:]))
		}
	}
	if len(want) == 0 || !slices.Equal(got, want) {
		b.Fatalf("kernel chain %s %s DNATs to\n%v\nRender says\n%v", table, chain, got, want)
	}
}

// TestKernelShards: tables appear and disappear with the shards that hold
// service ports, incrementally and in full syncs, and a Backend with
// another shard count (or the nft transport) takes over what an earlier one
// left, deleting the tables it no longer wants.
func TestKernelShards(t *testing.T) {
	requireKernel(t)
	inThrowawayNetns(t, "shards", func() {
		ctx := context.Background()
		o := cluster(40, 2)
		tr := o.tracker(v1.IPv4Protocol)
		full := tr.Snapshot()
		b, err := nftables.New(kernelOpts, nftables.Options{})
		if err != nil {
			t.Fatal(err)
		}
		mustSync(t, b, nil, full)
		checkKernelMatchesRender(t, knftables.IPv4Family, full, kernelOpts)
		if n := len(ourTables(t, knftables.IPv4Family)); n < 10 {
			t.Fatalf("40 services over 16 shards made %d tables", n)
		}

		// Incrementally remove all but one service: the emptied tables go.
		prev := full
		for _, svc := range o.services[1:] {
			tr.OnServiceDelete(svc)
			next := tr.Snapshot()
			mustSync(t, b, prev, next)
			prev = next
		}
		checkKernelMatchesRender(t, knftables.IPv4Family, prev, kernelOpts)
		if got := ourTables(t, knftables.IPv4Family); len(got) != 1 {
			t.Fatalf("one service left, tables %v", got)
		}
		// And back: tables are created with their skeleton on the way.
		for _, svc := range o.services[1:] {
			tr.OnServiceAdd(svc)
		}
		next := tr.Snapshot()
		mustSync(t, b, prev, next)
		checkKernelMatchesRender(t, knftables.IPv4Family, next, kernelOpts)

		// Another process with one table, through nft, takes over.
		one := kernelOpts
		one.Shards = 1
		b1, err := nftables.New(one, nftables.Options{Transport: nftables.TransportNFT})
		if err != nil {
			t.Fatal(err)
		}
		mustSync(t, b1, nil, next)
		if got := ourTables(t, knftables.IPv4Family); !slices.Equal(got, []string{"lbkit"}) {
			t.Fatalf("after a one-table sync, tables %v", got)
		}
		checkKernelMatchesRender(t, knftables.IPv4Family, next, one)

		// And back to sixteen over netlink.
		b16, err := nftables.New(kernelOpts, nftables.Options{})
		if err != nil {
			t.Fatal(err)
		}
		mustSync(t, b16, nil, next)
		checkKernelMatchesRender(t, knftables.IPv4Family, next, kernelOpts)
		if err := b16.Cleanup(ctx); err != nil {
			t.Fatal(err)
		}
		if got := ourTables(t, knftables.IPv4Family); len(got) != 0 {
			t.Fatalf("after Cleanup, tables %v", got)
		}
	})
}
