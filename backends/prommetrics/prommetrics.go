package prommetrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
)

// Options configure a Collector.
type Options struct {
	// IPFamily labels the series that kube-proxy labels with ip_family
	// ("IPv4" when empty).
	IPFamily string
}

// Collector holds lbkit's series, registered on the registry given to New.
// Its methods are safe for concurrent use.
type Collector struct {
	family string

	syncAll, syncFull, syncPartial *prometheus.HistogramVec
	lastSync, lastQueued           *prometheus.GaugeVec
	programming                    *prometheus.HistogramVec
	endpointPending, servicePend   prometheus.Gauge
	endpointTotal, serviceTotal    prometheus.Counter
	restoreFailures                prometheus.Counter
	partialRestoreFailures         prometheus.Counter
	nftablesFailures               prometheus.Counter
	syncFailures                   *prometheus.CounterVec
	programmed                     *prometheus.GaugeVec
	noLocal                        *prometheus.GaugeVec
	conntrackDeleted               *prometheus.CounterVec
	drift                          *prometheus.CounterVec
	served                         *prometheus.CounterVec

	mu        sync.Mutex
	lastTotal servicemap.ChangeCounts // of the total counters, which only grow
}

// syncBuckets are kube-proxy's: exponential from 1 ms to about 16 s.
var syncBuckets = prometheus.ExponentialBuckets(0.001, 2, 15)

// programmingBuckets start finer than kube-proxy's (lbkit programs a
// change in milliseconds) and reach its upper range.
var programmingBuckets = []float64{
	0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300,
}

// New creates lbkit's series and registers them on reg (never on the
// global registry unless that is what reg is).
func New(reg prometheus.Registerer, opts Options) (*Collector, error) {
	if opts.IPFamily == "" {
		opts.IPFamily = "IPv4"
	}
	c := &Collector{family: opts.IPFamily}
	hist := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
	}
	gaugeVec := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
	}
	c.syncAll = hist("sync_proxy_rules_duration_seconds", "Duration of syncs (full and partial, failed ones too), in seconds.", syncBuckets, "backend")
	c.syncFull = hist("sync_full_proxy_rules_duration_seconds", "Duration of full syncs (failed ones too), in seconds.", syncBuckets, "backend")
	c.syncPartial = hist("sync_partial_proxy_rules_duration_seconds", "Duration of partial (incremental) syncs (failed ones too), in seconds.", syncBuckets, "backend")
	c.lastSync = gaugeVec("sync_proxy_rules_last_timestamp_seconds", "When the last successful sync ended (Unix seconds).", "backend")
	c.lastQueued = gaugeVec("sync_proxy_rules_last_queued_timestamp_seconds", "When a change last asked for a sync (Unix seconds).", "backend")
	c.programming = hist("network_programming_duration_seconds",
		"Time from an EndpointSlice's last-change-trigger-time to the end of the sync that programmed it, in seconds.", programmingBuckets, "backend")
	c.endpointPending = gauge("sync_proxy_rules_endpoint_changes_pending", "EndpointSlice changes not yet in a successful sync.")
	c.endpointTotal = counter("sync_proxy_rules_endpoint_changes_total", "EndpointSlice changes seen.")
	c.servicePend = gauge("sync_proxy_rules_service_changes_pending", "Service changes not yet in a successful sync.")
	c.serviceTotal = counter("sync_proxy_rules_service_changes_total", "Service changes seen.")
	c.restoreFailures = counter("sync_proxy_rules_iptables_restore_failures_total", "Failed iptables syncs, full and partial.")
	c.partialRestoreFailures = counter("sync_proxy_rules_iptables_partial_restore_failures_total", "Failed partial iptables-restore runs.")
	c.nftablesFailures = counter("sync_proxy_rules_nftables_sync_failures_total", "Failed nftables syncs.")
	c.syncFailures = counterVec("sync_proxy_rules_sync_failures_total", "Failed syncs, by backend, kind (full or partial) and error class.", "backend", "kind", "class")
	c.programmed = gaugeVec("sync_proxy_rules_programmed", "Objects a backend holds after its last sync, by kind (rules per table, map elements, virtual servers...).", "backend", "kind")
	c.noLocal = gaugeVec("sync_proxy_rules_no_local_endpoints_total",
		"Service ports whose Local traffic policy finds no endpoint on this node while the service has endpoints elsewhere.", "traffic_policy", "ip_family")
	c.conntrackDeleted = counterVec("conntrack_reconciler_deleted_entries_total", "Stale conntrack entries deleted.", "ip_family")
	// kube-proxy's reconciler adds to it on every run, so the series
	// exists from the start.
	c.conntrackDeleted.WithLabelValues(c.family)
	c.drift = counterVec("sync_proxy_rules_drift_detections_total", "Times a drift check found the data plane changed from outside.", "backend")
	c.served = counterVec("proxy_healthz_total", "Health requests answered, by path and status code.", "path", "code")
	for _, col := range []prometheus.Collector{
		c.syncAll, c.syncFull, c.syncPartial, c.lastSync, c.lastQueued, c.programming,
		c.endpointPending, c.endpointTotal, c.servicePend, c.serviceTotal,
		c.restoreFailures, c.partialRestoreFailures, c.nftablesFailures, c.syncFailures,
		c.programmed, c.noLocal, c.conntrackDeleted, c.drift, c.served,
	} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return c, nil
}

const namespace = "lbkit"

// Hooks returns the hooks to give a Runner driving backend (its Name) as
// RunnerOptions.Metrics.
func (c *Collector) Hooks(backend string) *backends.Metrics {
	return &backends.Metrics{
		Synced: func(res backends.SyncResult) { c.synced(backend, res) },
		Queued: func(t time.Time) { c.lastQueued.WithLabelValues(backend).Set(seconds(t)) },
		NoLocalEndpoints: func(internal, external int) {
			c.noLocal.WithLabelValues("internal", c.family).Set(float64(internal))
			c.noLocal.WithLabelValues("external", c.family).Set(float64(external))
		},
		Programmed: func(backend string, counts map[string]int) {
			for kind, n := range counts {
				c.programmed.WithLabelValues(backend, kind).Set(float64(n))
			}
		},
		Drift:   func(backend string) { c.drift.WithLabelValues(backend).Inc() },
		Served:  func(path string, code int) { c.served.WithLabelValues(path, strconv.Itoa(code)).Inc() },
		Changes: c.changes,
		ProgrammingLatency: func(backend string, d time.Duration) {
			c.programming.WithLabelValues(backend).Observe(d.Seconds())
		},
	}
}

// changes sets the pending gauges and brings the total counters up to
// total.
func (c *Collector) changes(pending, total servicemap.ChangeCounts) {
	c.endpointPending.Set(float64(pending.EndpointSlices))
	c.servicePend.Set(float64(pending.Services))
	c.mu.Lock()
	defer c.mu.Unlock()
	if total.EndpointSlices > c.lastTotal.EndpointSlices {
		c.endpointTotal.Add(float64(total.EndpointSlices - c.lastTotal.EndpointSlices))
		c.lastTotal.EndpointSlices = total.EndpointSlices
	}
	if total.Services > c.lastTotal.Services {
		c.serviceTotal.Add(float64(total.Services - c.lastTotal.Services))
		c.lastTotal.Services = total.Services
	}
}

func (c *Collector) synced(backend string, res backends.SyncResult) {
	kind := "partial"
	if res.Full {
		kind = "full"
	}
	// As kube-proxy's proxiers, which observe them in a deferred call:
	// a failed sync's duration counts too.
	d := res.Duration.Seconds()
	c.syncAll.WithLabelValues(backend).Observe(d)
	if res.Full {
		c.syncFull.WithLabelValues(backend).Observe(d)
	} else {
		c.syncPartial.WithLabelValues(backend).Observe(d)
	}
	if res.Err != nil {
		c.syncFailures.WithLabelValues(backend, kind, string(backends.Classify(res.Err))).Inc()
		switch backend {
		case "iptables":
			// kube-proxy counts every failed restore, and the failed
			// partial syncs once more on their own.
			c.restoreFailures.Inc()
			if !res.Full {
				c.partialRestoreFailures.Inc()
			}
		case "nftables":
			c.nftablesFailures.Inc()
		}
		return
	}
	c.lastSync.WithLabelValues(backend).Set(seconds(res.Start.Add(res.Duration)))
}

// ConntrackDeleted counts stale conntrack entries deleted (labelled with
// Options.IPFamily); give it to conntrack.Options.OnDeleted.
func (c *Collector) ConntrackDeleted(n int) {
	c.conntrackDeleted.WithLabelValues(c.family).Add(float64(n))
}

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
