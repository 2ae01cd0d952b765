package prommetrics_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/prommetrics"
)

// series gathers reg and flattens the families named into one value per
// series: counters and gauges by name and labels, histograms as _count,
// _sum and one _bucket per upper bound.
func series(t *testing.T, reg *prometheus.Registry, names ...string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if !slices.Contains(names, f.GetName()) {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := func(suffix string, extra ...string) string {
				return f.GetName() + suffix + "{" + strings.Join(append(slices.Clone(labels), extra...), ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key("")] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key("")] = m.Gauge.GetValue()
			case m.Histogram != nil:
				h := m.Histogram
				out[key("_count")] = float64(h.GetSampleCount())
				out[key("_sum")] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					out[key("_bucket", fmt.Sprintf("le=\"%g\"", b.GetUpperBound()))] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

// subset returns the entries of got whose keys want has, so that a test
// states only the series it is about (a missing one shows in the diff).
func subset(got, want map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k := range want {
		if v, ok := got[k]; ok {
			out[k] = v
		}
	}
	return out
}

// TestFidelitySyncResults feeds the Synced hook what a Runner reports and
// compares the series with what kube-proxy v1.37.2's proxiers record for
// the same outcome. Each row names the kube-proxy code it mirrors.
func TestFidelitySyncResults(t *testing.T) {
	failed := backends.ErrApply
	const (
		all     = "lbkit_sync_proxy_rules_duration_seconds"
		full    = "lbkit_sync_full_proxy_rules_duration_seconds"
		partial = "lbkit_sync_partial_proxy_rules_duration_seconds"
		restore = "lbkit_sync_proxy_rules_iptables_restore_failures_total"
		partRst = "lbkit_sync_proxy_rules_iptables_partial_restore_failures_total"
		nft     = "lbkit_sync_proxy_rules_nftables_sync_failures_total"
		last    = "lbkit_sync_proxy_rules_last_timestamp_seconds"
	)
	for _, tc := range []struct {
		name    string
		mirrors string
		backend string
		results []backends.SyncResult
		want    map[string]float64
	}{
		{
			name:    "failed syncs are observed in the duration histograms",
			mirrors: "nftables/iptables Proxier.syncProxyRules: SyncProxyRulesLatency and Sync{Full,Partial}ProxyRulesLatency observed in a deferred call, success or not",
			backend: "nftables",
			results: []backends.SyncResult{
				{Full: true, Duration: 10 * time.Millisecond},
				{Full: false, Duration: 3 * time.Millisecond, Err: failed},
				{Full: true, Duration: 20 * time.Millisecond, Err: failed},
			},
			want: map[string]float64{
				all + `_count{backend="nftables"}`:                 3,
				full + `_count{backend="nftables"}`:                2,
				full + `_bucket{backend="nftables",le="0.016"}`:    1,
				partial + `_count{backend="nftables"}`:             1,
				partial + `_bucket{backend="nftables",le="0.004"}`: 1,
			},
		},
		{
			name:    "iptables: every failed sync is a restore failure, a partial one a partial restore failure too",
			mirrors: "iptables Proxier.syncProxyRules: IPTablesRestoreFailuresTotal on any failed RestoreAll; IPTablesPartialRestoreFailuresTotal when a sync with !doFullSync fails",
			backend: "iptables",
			results: []backends.SyncResult{{Full: true, Err: failed}, {Full: false, Err: failed}, {Full: false, Err: failed}, {Full: false}},
			want:    map[string]float64{restore + "{}": 3, partRst + "{}": 2, nft + "{}": 0},
		},
		{
			name:    "nftables: every failed sync, full or partial",
			mirrors: "nftables Proxier.syncProxyRules: NFTablesSyncFailuresTotal when the transaction fails",
			backend: "nftables",
			results: []backends.SyncResult{{Full: true, Err: failed}, {Full: false, Err: failed}, {Full: false}},
			want:    map[string]float64{restore + "{}": 0, partRst + "{}": 0, nft + "{}": 2},
		},
		{
			name:    "the last sync's timestamp follows successes only",
			mirrors: "Proxier.syncProxyRules: SyncProxyRulesLastTimestamp set once the rules applied",
			backend: "nftables",
			results: []backends.SyncResult{
				{Full: true, Start: time.Unix(100, 0), Duration: time.Second},
				{Full: false, Start: time.Unix(200, 0), Duration: time.Second, Err: failed},
			},
			want: map[string]float64{last + `{backend="nftables"}`: 101},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			c, err := prommetrics.New(reg, prommetrics.Options{})
			if err != nil {
				t.Fatal(err)
			}
			h := c.Hooks(tc.backend)
			for _, r := range tc.results {
				h.Synced(r)
			}
			got := series(t, reg, all, full, partial, restore, partRst, nft, last)
			if diff := cmp.Diff(tc.want, subset(got, tc.want)); diff != "" {
				t.Errorf("mirrors %s (-want +got):\n%s", tc.mirrors, diff)
			}
		})
	}
}

// TestFidelityConntrackDeleted: kube-proxy's
// conntrack_reconciler_deleted_entries_total carries ip_family and exists
// from the first reconcile (CleanStaleEntries adds n, even 0).
func TestFidelityConntrackDeleted(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := prommetrics.New(reg, prommetrics.Options{IPFamily: "IPv6"})
	if err != nil {
		t.Fatal(err)
	}
	const name = "lbkit_conntrack_reconciler_deleted_entries_total"
	key := name + `{ip_family="IPv6"}`
	if diff := cmp.Diff(map[string]float64{key: 0}, series(t, reg, name)); diff != "" {
		t.Errorf("before any deletion (-want +got):\n%s", diff)
	}
	c.ConntrackDeleted(3)
	c.ConntrackDeleted(2)
	if diff := cmp.Diff(map[string]float64{key: 5}, series(t, reg, name)); diff != "" {
		t.Errorf("after deleting 3 and 2 (-want +got):\n%s", diff)
	}
}
