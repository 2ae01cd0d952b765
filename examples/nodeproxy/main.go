//go:build linux

// Command nodeproxy is a complete node proxy built from lbkit's public API:
// informers from a kubeconfig or the in-cluster config, a Tracker, a Runner
// driving the nftables (or iptables) backend with stale-conntrack cleanup,
// health-check node ports, and /healthz. It is the program a custom-proxy
// author starts from.
//
//	nodeproxy --kubeconfig ~/.kube/config --node $(hostname) --cluster-cidr 10.244.0.0/16
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/conntrack"
	"github.com/lbkit/lbkit/backends/healthcheck"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/backends/prommetrics"
	"github.com/lbkit/lbkit/servicemap"
)

// config is what the command line sets.
type config struct {
	kubeconfig   string
	node         string
	family       v1.IPFamily
	backend      string
	clusterCIDRs []netip.Prefix
	nodePorts    []netip.Prefix
	healthzAddr  string
	metricsAddr  string
	minInterval  time.Duration
	reapTCP      bool
	// registry and metrics are made by newMetrics (mainErr makes them
	// before the backend, whose conntrack cleanup they count).
	registry *prometheus.Registry
	metrics  *prommetrics.Collector
}

// newMetrics makes c's registry and lbkit's series on it.
func (c *config) newMetrics() error {
	c.registry = prometheus.NewRegistry()
	var err error
	c.metrics, err = prommetrics.New(c.registry, prommetrics.Options{IPFamily: string(c.family)})
	return err
}

func parseConfig(args []string) (config, error) {
	c := config{family: v1.IPv4Protocol}
	fs := flag.NewFlagSet("nodeproxy", flag.ContinueOnError)
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster config)")
	host, _ := os.Hostname()
	fs.StringVar(&c.node, "node", envOr("NODE_NAME", host), "this node's name")
	ipv6 := fs.Bool("ipv6", false, "proxy IPv6 services instead of IPv4")
	fs.StringVar(&c.backend, "backend", "nftables", "nftables or iptables")
	cidrs := fs.String("cluster-cidr", "", "pod CIDRs, comma separated")
	nodePorts := fs.String("nodeport-addresses", "", "CIDRs of addresses that accept NodePorts, comma separated")
	fs.StringVar(&c.healthzAddr, "healthz-addr", ":10256", "address of /healthz (is the data plane current? for load balancers' probes) and /livez (does the loop turn? for a liveness probe)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "127.0.0.1:10249", "address of /metrics and /healthz (empty: none)")
	fs.DurationVar(&c.minInterval, "min-sync-interval", time.Second, "minimum time between syncs")
	fs.BoolVar(&c.reapTCP, "reap-tcp", false, "also delete TCP conntrack entries to endpoints removed from their service (see conntrack.Options.ReapTCP)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if *ipv6 {
		c.family = v1.IPv6Protocol
	}
	var err1, err2 error
	c.clusterCIDRs, err1 = prefixes(*cidrs)
	c.nodePorts, err2 = prefixes(*nodePorts)
	return c, errors.Join(err1, err2)
}

// watch starts informers that feed tr, and returns the HasSynced of their
// event handler registrations: true once the Tracker itself has seen every
// object of the initial listing (an informer's own HasSynced can be true
// before its handlers have been called, and a first sync then programs a
// half-listed cluster). The label selector is kube-proxy's: skip objects of
// other proxies and headless services' slices.
func watch(ctx context.Context, client kubernetes.Interface, tr *servicemap.Tracker, node string) ([]func() bool, error) {
	selector := "!" + servicemap.LabelServiceProxyName + ",!" + servicemap.LabelHeadless
	factory := informers.NewSharedInformerFactoryWithOptions(client, 15*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	nodes := informers.NewSharedInformerFactoryWithOptions(client, 15*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", node).String()
		}))
	var synced []func() bool
	for _, w := range []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{factory.Core().V1().Services().Informer(), tr.ServiceHandler()},
		{factory.Discovery().V1().EndpointSlices().Informer(), tr.EndpointSliceHandler()},
		{nodes.Core().V1().Nodes().Informer(), tr.NodeHandler()}, // the zone, for topology hints
	} {
		reg, err := w.inf.AddEventHandler(w.h)
		if err != nil {
			return nil, err
		}
		synced = append(synced, reg.HasSynced)
	}
	// The service ranges (the nftables backend drops new connections to
	// their unallocated addresses). Not waited for: until they are listed
	// nothing is dropped, and an API server without ServiceCIDRs must not
	// hold up the first sync.
	if _, err := factory.Networking().V1().ServiceCIDRs().Informer().AddEventHandler(tr.ServiceCIDRHandler()); err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	nodes.Start(ctx.Done())
	return synced, nil
}

// newBackend builds the data plane, with stale UDP flows cleaned after
// every successful sync.
func newBackend(c config) (backends.Interface, error) {
	var b backends.Interface
	var err error
	switch c.backend {
	case "nftables":
		b, err = nftables.New(nftables.Spec{ClusterCIDRs: c.clusterCIDRs, NodePortAddresses: c.nodePorts}, nftables.Options{})
	case "iptables":
		b, err = iptables.New(iptables.Spec{ClusterCIDRs: c.clusterCIDRs, NodePortAddresses: c.nodePorts}, iptables.Options{})
	default:
		return nil, fmt.Errorf("unknown backend %q", c.backend)
	}
	if err != nil {
		return nil, err
	}
	opts := conntrack.Options{NodePortAddresses: c.nodePorts, ReapTCP: c.reapTCP}
	if c.metrics != nil {
		opts.OnDeleted = c.metrics.ConntrackDeleted
	}
	cleaner, err := conntrack.New(opts)
	if err != nil {
		return nil, err
	}
	return conntrack.WithCleanup(b, cleaner), nil
}

// run proxies until ctx ends.
func run(ctx context.Context, c config, client kubernetes.Interface, b backends.Interface, log *slog.Logger) error {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: c.node, IPFamily: c.family})
	synced, err := watch(ctx, client, tr, c.node)
	if err != nil {
		return err
	}
	if c.metrics == nil {
		if err := c.newMetrics(); err != nil {
			return err
		}
	}
	reg, metrics := c.registry, c.metrics
	runner := backends.NewRunner(tr, b, backends.RunnerOptions{
		MinSyncInterval: c.minInterval,
		HasSynced:       synced,
		Logger:          log,
		Metrics:         metrics.Hooks(b.Name()),
		NodeEligible:    tr.NodeEligible, // a node being deleted fails /healthz
	})
	hc := healthcheck.NewServer(healthcheck.Options{NodeName: c.node, Logger: log,
		ProxyHealthy: func() bool { return runner.Health().Healthy }})
	defer hc.Close()
	// Health-check node ports follow the snapshots, through their own
	// subscription to the Tracker (the Runner has another); a port that
	// could not be opened is tried again after minInterval.
	changes, unsubscribe := tr.Subscribe()
	defer unsubscribe()
	go func() {
		for {
			var retry <-chan time.Time
			if err := hc.Sync(tr.Snapshot()); err != nil {
				log.Warn("health check ports", "err", err)
				retry = time.After(c.minInterval)
			}
			select {
			case <-ctx.Done():
				return
			case _, ok := <-changes:
				if !ok {
					return
				}
			case <-retry:
			}
		}
	}()
	healthz := http.NewServeMux()
	healthz.Handle("/healthz", runner)
	healthz.Handle("/livez", runner.Livez())
	defer serve(c.healthzAddr, healthz, log)()
	if c.metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/healthz", runner)
		mux.Handle("/livez", runner.Livez())
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		defer serve(c.metricsAddr, mux, log)()
	}
	return runner.Run(ctx)
}

// serve runs an HTTP server on addr until the returned func is called.
func serve(addr string, h http.Handler, log *slog.Logger) func() {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "addr", addr, "err", err)
		}
	}()
	return func() { srv.Close() }
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	c, err := parseConfig(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	if err := mainErr(c, log); err != nil {
		log.Error("nodeproxy", "err", err)
		os.Exit(1)
	}
}

func mainErr(c config, log *slog.Logger) error {
	var restConfig *rest.Config
	var err error
	if c.kubeconfig != "" {
		restConfig, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	} else {
		restConfig, err = rest.InClusterConfig()
	}
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	if err := c.newMetrics(); err != nil {
		return err
	}
	b, err := newBackend(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return run(ctx, c, client, b, log)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func prefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
