// Package prommetrics exposes lbkit's measurements as Prometheus series,
// with kube-proxy's names and meanings under an "lbkit_" prefix, so
// dashboards built for kube-proxy translate by renaming. The core packages
// import no metrics library: a Runner reports through backends.Metrics
// hooks, and a Collector turns them into series.
//
// A Collector registers on the registry it is given, never on the global
// default (unless that is the registry given):
//
//	reg := prometheus.NewRegistry()
//	c, err := prommetrics.New(reg, prommetrics.Options{})
//	runner := backends.NewRunner(tracker, backend, backends.RunnerOptions{Metrics: c.Hooks(backend.Name()), ...})
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The series and their kube-proxy counterparts are listed in the README.
package prommetrics
