package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

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
	masqAll      bool
	nodeIPs      string
	scheduler    string
	shards       int
}

func (f *backendFlags) register(fs *flag.FlagSet, resolve bool) {
	if resolve {
		f.resolveFlags.register(fs)
		fs.Var(&f.nodePortAddr, "nodeport-addresses", "CIDRs of the node addresses that accept NodePorts (default: every non-loopback address)")
		fs.Var(&f.clusterCIDR, "cluster-cidr", "pod CIDRs, one per family, comma separated (default: no source counts as a pod)")
		fs.BoolVar(&f.masqAll, "masquerade-all", false, "masquerade all traffic to cluster IPs, pods' included (kube-proxy's --masquerade-all)")
		fs.StringVar(&f.nodeIPs, "node-ips", "", "ipvs, userspace: node addresses that serve node ports, comma separated (default when programming: the namespace's addresses)")
		fs.StringVar(&f.scheduler, "scheduler", "rr", "ipvs: scheduler (rr, wrr, lc, wlc, sh, mh)")
		fs.IntVar(&f.shards, "shards", nftables.DefaultShards, "nftables: number of tables the services are spread over (1: one table named lbkit)")
	}
	fs.StringVar(&f.backend, "backend", "nftables", "data plane: nftables, iptables, ipvs or userspace")
}

// renderer renders a snapshot as the backend's text.
type renderer func(*servicemap.Snapshot) string

// backendSpecs are the Specs the flags describe: what each backend would
// program. Rendering needs nothing else, so it works on every platform.
type backendSpecs struct {
	nftables  nftables.Spec
	iptables  iptables.Spec
	ipvs      ipvs.Spec
	userspace userspace.Spec
}

// specs returns the Specs, and the renderer of the chosen backend.
func (f *backendFlags) specs() (*backendSpecs, renderer, error) {
	nodeIPs, err := addrList(f.nodeIPs)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: --node-ips: %v", errUsage, err)
	}
	s := &backendSpecs{
		nftables:  nftables.Spec{ClusterCIDRs: f.clusterCIDR, MasqueradeAll: f.masqAll, NodePortAddresses: f.nodePortAddr, Shards: f.shards},
		iptables:  iptables.Spec{ClusterCIDRs: f.clusterCIDR, MasqueradeAll: f.masqAll, NodePortAddresses: f.nodePortAddr},
		ipvs:      ipvs.Spec{ClusterCIDRs: f.clusterCIDR, MasqueradeAll: f.masqAll, NodePortAddresses: f.nodePortAddr, NodeIPs: nodeIPs, Scheduler: f.scheduler},
		userspace: userspace.Spec{ClusterCIDRs: f.clusterCIDR, NodePortAddresses: f.nodePortAddr, NodeIPs: nodeIPs},
	}
	switch f.backend {
	case "nftables":
		return s, func(snap *servicemap.Snapshot) string { return nftables.Render(snap, s.nftables) }, nil
	case "iptables":
		return s, func(snap *servicemap.Snapshot) string {
			// The jumps from the built-in chains first, as comments (Sync
			// inserts them; the rest stays iptables-restore input).
			var b strings.Builder
			b.WriteString("# How packets reach lbkit's chains: the rules Sync keeps in the built-in chains.\n")
			for _, j := range iptables.Jumps(s.iptables) {
				b.WriteString("#   iptables " + j + "\n")
			}
			return b.String() + iptables.Render(snap, s.iptables)
		}, nil
	case "ipvs":
		if !ipvs.ValidScheduler(f.scheduler) {
			return nil, nil, fmt.Errorf("%w: --scheduler %q is not an IPVS scheduler lbkit knows", errUsage, f.scheduler)
		}
		return s, func(snap *servicemap.Snapshot) string { return ipvs.Render(snap, s.ipvs) }, nil
	case "userspace":
		return s, func(snap *servicemap.Snapshot) string { return userspace.Render(snap, s.userspace) }, nil
	}
	return nil, nil, fmt.Errorf("%w: --backend must be nftables, iptables, ipvs or userspace, not %q", errUsage, f.backend)
}

// runRender prints what a backend would program, without a kernel.
func runRender(args []string, stdout, stderr io.Writer) error {
	var f backendFlags
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	f.register(fs, true)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_, render, err := f.specs()
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
}
