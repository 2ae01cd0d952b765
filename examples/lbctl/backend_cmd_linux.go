//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/conntrack"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/backends/userspace"
)

// open returns the backend's renderer, and the backend itself unless
// renderOnly (rendering needs no kernel and no privileges).
func (f *backendFlags) open(renderOnly bool) (renderer, backends.Interface, error) {
	s, r, err := f.specs()
	if err != nil || renderOnly {
		return r, nil, err
	}
	var b backends.Interface
	switch f.backend {
	case "nftables":
		b, err = nftables.New(s.nftables, nftables.Options{})
	case "iptables":
		b, err = iptables.New(s.iptables, iptables.Options{})
	case "ipvs":
		b, err = ipvs.New(s.ipvs, ipvs.Options{})
	default:
		b, err = userspace.New(s.userspace, userspace.Options{})
	}
	if err != nil {
		return nil, nil, err
	}
	return r, b, nil
}

// runBackendCommand runs render, apply, cleanup and demo.
func runBackendCommand(cmd string, args []string, stdout, stderr io.Writer) error {
	switch cmd {
	case "demo":
		return runDemo(args, stdout)
	case "render":
		return runRender(args, stdout, stderr)
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
