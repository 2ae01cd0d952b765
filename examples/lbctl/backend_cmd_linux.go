//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/conntrack"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/backends/userspace"
	"github.com/lbkit/lbkit/servicemap"
)

// backendFlags are what render, apply and cleanup share.
type backendFlags struct {
	resolveFlags
	backend      string
	nodePortAddr prefixList
	clusterCIDR  prefixList
	nodeIPs      string
	scheduler    string
	shards       int
}

func (f *backendFlags) register(fs *flag.FlagSet, resolve bool) {
	if resolve {
		f.resolveFlags.register(fs)
		fs.Var(&f.nodePortAddr, "nodeport-addresses", "CIDRs of the node addresses that accept NodePorts (default: every non-loopback address)")
		fs.Var(&f.clusterCIDR, "cluster-cidr", "pod CIDRs, one per family, comma separated (default: no source counts as a pod)")
		fs.StringVar(&f.nodeIPs, "node-ips", "", "ipvs, userspace: node addresses that serve node ports, comma separated (default when programming: the namespace's addresses)")
		fs.StringVar(&f.scheduler, "scheduler", "rr", "ipvs: scheduler (rr, wrr, lc, wlc, sh, mh)")
		fs.IntVar(&f.shards, "shards", nftables.DefaultShards, "nftables: number of tables the services are spread over (1: one table named lbkit)")
	}
	fs.StringVar(&f.backend, "backend", "nftables", "data plane: nftables, iptables, ipvs or userspace")
}

// renderer renders a snapshot as the backend's text.
type renderer func(*servicemap.Snapshot) string

// open returns the backend's renderer, and the backend itself unless
// renderOnly (rendering needs no kernel and no privileges).
func (f *backendFlags) open(renderOnly bool) (renderer, backends.Interface, error) {
	switch f.backend {
	case "nftables":
		spec := nftables.Spec{ClusterCIDRs: f.clusterCIDR, NodePortAddresses: f.nodePortAddr, Shards: f.shards}
		r := func(s *servicemap.Snapshot) string { return nftables.Render(s, spec) }
		if renderOnly {
			return r, nil, nil
		}
		b, err := nftables.New(spec, nftables.Options{})
		return r, b, err
	case "iptables":
		spec := iptables.Spec{ClusterCIDRs: f.clusterCIDR, NodePortAddresses: f.nodePortAddr}
		r := func(s *servicemap.Snapshot) string {
			// The jumps from the built-in chains first, as comments (Sync
			// inserts them; the rest stays iptables-restore input).
			var b strings.Builder
			b.WriteString("# How packets reach lbkit's chains: the rules Sync keeps in the built-in chains.\n")
			for _, j := range iptables.Jumps(spec) {
				b.WriteString("#   iptables " + j + "\n")
			}
			return b.String() + iptables.Render(s, spec)
		}
		if renderOnly {
			return r, nil, nil
		}
		b, err := iptables.New(spec, iptables.Options{})
		return r, b, err
	case "ipvs":
		nodeIPs, err := addrList(f.nodeIPs)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: --node-ips: %v", errUsage, err)
		}
		if !ipvs.ValidScheduler(f.scheduler) {
			return nil, nil, fmt.Errorf("%w: --scheduler %q is not an IPVS scheduler lbkit knows", errUsage, f.scheduler)
		}
		spec := ipvs.Spec{ClusterCIDRs: f.clusterCIDR, NodePortAddresses: f.nodePortAddr, NodeIPs: nodeIPs, Scheduler: f.scheduler}
		r := func(s *servicemap.Snapshot) string { return ipvs.Render(s, spec) }
		if renderOnly {
			return r, nil, nil
		}
		b, err := ipvs.New(spec, ipvs.Options{})
		return r, b, err
	case "userspace":
		nodeIPs, err := addrList(f.nodeIPs)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: --node-ips: %v", errUsage, err)
		}
		spec := userspace.Spec{ClusterCIDRs: f.clusterCIDR, NodePortAddresses: f.nodePortAddr, NodeIPs: nodeIPs}
		r := func(s *servicemap.Snapshot) string { return userspace.Render(s, spec) }
		if renderOnly {
			return r, nil, nil
		}
		b, err := userspace.New(spec, userspace.Options{})
		return r, b, err
	}
	return nil, nil, fmt.Errorf("%w: --backend must be nftables, iptables, ipvs or userspace, not %q", errUsage, f.backend)
}

// runBackendCommand runs render, apply, cleanup and demo.
func runBackendCommand(cmd string, args []string, stdout, stderr io.Writer) error {
	if cmd == "demo" {
		return runDemo(args, stdout)
	}
	var f backendFlags
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	f.register(fs, cmd != "cleanup")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	switch cmd {
	case "render":
		render, _, err := f.open(true)
		if err != nil {
			return err
		}
		res, err := f.resolve()
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, render(res.snap))
		for _, w := range res.warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		return nil
	case "apply":
		if _, _, err := f.open(true); err != nil {
			return err
		}
		if f.backend == "userspace" {
			return fmt.Errorf("%w: the userspace backend is a proxy that has to keep running: use lbctl serve --backend userspace", errUsage)
		}
		res, err := f.resolve()
		if err != nil {
			return err
		}
		_, b, err := f.open(false)
		if err != nil {
			return err
		}
		// A one-shot process has no previous snapshot: a full sync, which
		// reconciles against what the kernel holds, converges like the
		// Runner would; conntrack is reconciled the same way.
		if err := b.Sync(ctx, nil, res.snap); err != nil {
			return err
		}
		cleaner, err := conntrack.New(conntrack.Options{NodePortAddresses: f.nodePortAddr})
		if err != nil {
			return err
		}
		deleted, err := cleaner.Reconcile(res.snap)
		if err != nil {
			return fmt.Errorf("conntrack cleanup: %w", err)
		}
		fmt.Fprintf(stdout, "applied %d service ports with %s (snapshot version %d); %d stale UDP flows deleted\n",
			res.snap.Len(), b.Name(), res.snap.Version(), deleted)
		for _, w := range res.warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
		return nil
	default: // cleanup
		_, b, err := f.open(false)
		if err != nil {
			return err
		}
		if err := b.Cleanup(ctx); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed everything %s programmed for lbkit\n", b.Name())
		return nil
	}
}
