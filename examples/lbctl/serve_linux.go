//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/userspace"
	"github.com/lbkit/lbkit/servicemap"
)

// runServe is `lbctl serve`: program the backend through a Runner and keep
// it current. SIGHUP re-reads the files and syncs the difference; SIGINT
// and SIGTERM end it (exit 0), leaving a kernel backend's rules in place
// unless --cleanup-on-exit.
func runServe(args []string, stdout, stderr io.Writer) error {
	var f backendFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	f.register(fs, true)
	healthz := fs.String("healthz", "", "address to serve the Runner's /healthz and /livez on (e.g. 127.0.0.1:10256)")
	cleanupOnExit := fs.Bool("cleanup-on-exit", false, "remove what the backend programmed when lbctl exits")
	interval := fs.Duration("min-sync-interval", 100*time.Millisecond, "least time between two syncs")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, _, err := f.open(true); err != nil {
		return err
	}
	family, err := f.family_()
	if err != nil {
		return err
	}
	in, err := load(f.files)
	if err != nil {
		return err
	}
	node := f.node
	if node == "" && len(in.Nodes) == 1 {
		node = in.Nodes[0].Name
	}
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node, IPFamily: family, ProxyName: f.proxyName, ServiceCIDRs: f.serviceCIDRs})
	objs := feed(tr, nil, in)
	printWarnings(stderr, in.Warnings, tr)

	_, b, err := f.open(false)
	if err != nil {
		return err
	}
	r := backends.NewRunner(tr, b, backends.RunnerOptions{
		MinSyncInterval: *interval,
		// The files are read whole before the Runner starts: nothing is
		// half listed.
		NoWaitForSync: true,
		OnSync: func(res backends.SyncResult) {
			if res.Err != nil {
				fmt.Fprintf(stderr, "sync to version %d failed: %v\n", res.To, res.Err)
				return
			}
			kind := "incremental"
			if res.Full {
				kind = "full"
			}
			fmt.Fprintf(stderr, "synced version %d (%s) in %v\n", res.To, kind, res.Duration.Round(time.Microsecond))
		},
	})
	if *healthz != "" {
		srv := &http.Server{Addr: *healthz, Handler: healthMux(r), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintf(stderr, "healthz: %v\n", err)
			}
		}()
		defer srv.Close()
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	fmt.Fprintf(stdout, "serving %d service ports with %s; SIGHUP reloads %s\n", tr.Snapshot().Len(), b.Name(), filesText(f.files))
	for {
		select {
		case err := <-done:
			return err
		case s := <-sigs:
			if s != syscall.SIGHUP {
				cancel()
				if err := <-done; err != nil {
					return err
				}
				return stop(b, *cleanupOnExit, stdout)
			}
			next, err := load(f.files)
			if err != nil {
				fmt.Fprintf(stderr, "reload: %v (keeping what is served)\n", err)
				continue
			}
			objs = feed(tr, objs, next)
			printWarnings(stderr, next.Warnings, tr)
		}
	}
}

// stop ends serving: a userspace proxy closes its sockets (its kernel
// state goes with --cleanup-on-exit); kernel rules stay unless asked.
func stop(b backends.Interface, cleanup bool, stdout io.Writer) error {
	if cleanup {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.Cleanup(ctx); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed everything %s programmed\n", b.Name())
		return nil
	}
	if us, ok := b.(*userspace.Backend); ok {
		return us.Close()
	}
	return nil
}

func healthMux(r *backends.Runner) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", r)
	mux.Handle("/livez", r.Livez())
	return mux
}

func filesText(files []string) string {
	if len(files) == 0 {
		return "nothing (the embedded sample)"
	}
	return fmt.Sprint(files)
}

// objects are what lbctl serve has given the Tracker, by kind and
// namespace/name.
type objects struct {
	services map[string]*v1.Service
	slices   map[string]*discoveryv1.EndpointSlice
	nodes    map[string]*v1.Node
	cidrs    map[string]*networkingv1.ServiceCIDR
}

// feed gives the Tracker the difference between what it was given before
// (nil: nothing) and in: updates for objects that stay or appear, deletes
// for those that went. Unchanged objects change nothing in the Tracker, so
// a reload that changed one service makes one incremental sync of it.
func feed(tr *servicemap.Tracker, before *objects, in *inputs) *objects {
	if before == nil {
		before = &objects{}
	}
	now := &objects{
		services: map[string]*v1.Service{},
		slices:   map[string]*discoveryv1.EndpointSlice{},
		nodes:    map[string]*v1.Node{},
		cidrs:    map[string]*networkingv1.ServiceCIDR{},
	}
	for _, sc := range in.ServiceCIDRs {
		now.cidrs[sc.Name] = sc
		tr.OnServiceCIDRUpdate(before.cidrs[sc.Name], sc)
	}
	for name, sc := range before.cidrs {
		if now.cidrs[name] == nil {
			tr.OnServiceCIDRDelete(sc)
		}
	}
	for _, n := range in.Nodes {
		now.nodes[n.Name] = n
		tr.OnNodeUpdate(before.nodes[n.Name], n)
	}
	for _, es := range in.Slices {
		key := es.Namespace + "/" + es.Name
		now.slices[key] = es
		tr.OnEndpointSliceUpdate(before.slices[key], es)
	}
	for _, s := range in.Services {
		key := s.Namespace + "/" + s.Name
		now.services[key] = s
		tr.OnServiceUpdate(before.services[key], s)
	}
	for key, s := range before.services {
		if now.services[key] == nil {
			tr.OnServiceDelete(s)
		}
	}
	for key, es := range before.slices {
		if now.slices[key] == nil {
			tr.OnEndpointSliceDelete(es)
		}
	}
	for key, n := range before.nodes {
		if now.nodes[key] == nil {
			tr.OnNodeDelete(n)
		}
	}
	return now
}

func printWarnings(w io.Writer, loadWarnings []string, tr *servicemap.Tracker) {
	for _, s := range loadWarnings {
		fmt.Fprintln(w, "warning:", s)
	}
	for _, s := range tr.Warnings() {
		fmt.Fprintln(w, "warning:", s.String())
	}
}
