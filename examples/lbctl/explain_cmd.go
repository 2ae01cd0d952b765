package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/servicemap"
)

// runExplain is `lbctl explain NAMESPACE/NAME[:PORT]`.
func runExplain(args []string, stdout, stderr io.Writer) error {
	var rf resolveFlags
	var pods prefixList
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	rf.register(fs)
	fs.StringVar(&rf.output, "o", "table", "output format: table or json")
	from := fs.String("from", "", "client address: show the path one new connection from it takes")
	to := fs.String("to", "", "with --from, only this frontend (IP:PORT; a node port as any node address:PORT)")
	backend := fs.String("backend", "", "describe the choice as this backend makes it (nftables, iptables, ipvs, userspace), and read its rules for the service back from the current network namespace")
	fs.Var(&pods, "cluster-cidr", "pod CIDRs, comma separated: which clients are pods")
	masqAll := fs.Bool("masquerade-all", false, "the proxy masquerades all traffic to cluster IPs (kube-proxy's --masquerade-all)")
	nodeIPs := fs.String("node-ips", "", "the node's addresses, comma separated (default: the Node object's)")
	scheduler := fs.String("scheduler", "rr", "ipvs: the scheduler")
	target, err := parseWithTarget(fs, args)
	if err != nil {
		return err
	}
	if target == "" {
		return fmt.Errorf("%w: explain needs NAMESPACE/NAME[:PORT]", errUsage)
	}
	name, port, _ := strings.Cut(target, ":")
	if !strings.Contains(name, "/") {
		name = "default/" + name
	}
	if rf.output != "table" && rf.output != "json" {
		return fmt.Errorf("%w: -o must be table or json, not %q", errUsage, rf.output)
	}
	switch *backend {
	case "", "nftables", "iptables", "ipvs", "userspace":
	default:
		return fmt.Errorf("%w: --backend must be nftables, iptables, ipvs or userspace, not %q", errUsage, *backend)
	}
	var o pathOptions
	if *from != "" {
		a, err := netip.ParseAddr(*from)
		if err != nil {
			return fmt.Errorf("%w: --from %q is not an IP address", errUsage, *from)
		}
		o.from = a.Unmap()
	}
	if *to != "" {
		ap, err := netip.ParseAddrPort(*to)
		if err != nil {
			return fmt.Errorf("%w: --to %q is not IP:PORT", errUsage, *to)
		}
		o.to = ap
	}
	family, err := rf.family_()
	if err != nil {
		return err
	}
	in, err := load(rf.files)
	if err != nil {
		return err
	}
	res, tr := resolveTracked(&rf, in, family)
	x, err := explainService(in, res, tr, name, port)
	if err != nil {
		return err
	}
	o.pods, o.masqAll, o.backend, o.scheduler = pods, *masqAll, *backend, *scheduler
	if o.nodeIPs, err = addrList(*nodeIPs); err != nil {
		return fmt.Errorf("%w: --node-ips: %v", errUsage, err)
	}
	if len(o.nodeIPs) == 0 {
		o.nodeIPs = nodeAddresses(in, res.snap.Node().Name)
	}
	for i := range x.Ports {
		p := res.snap.Lookup(portName(x.Ports[i].Name, x.Ports[i].Protocol))
		if o.from.IsValid() {
			x.Ports[i].Paths = explainPaths(p, o)
		}
		if *backend != "" && readKernel {
			lines, err := kernelRules(*backend, p)
			if err != nil {
				return fmt.Errorf("reading %s's rules: %w", *backend, err)
			}
			x.Ports[i].Kernel = lines
		}
	}
	if rf.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(x)
	}
	writeExplanation(stdout, x)
	return nil
}

// readKernel turns off, in tests, reading the kernel for explain
// --backend (the backend's choice is still described).
var readKernel = true

// parseWithTarget parses flags around one positional argument (before or
// after them), which it returns.
func parseWithTarget(fs *flag.FlagSet, args []string) (string, error) {
	var target string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := parseFlagsAllowingArgs(fs, args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 && target == "" {
		target = fs.Arg(0)
		if err := parseFlagsAllowingArgs(fs, fs.Args()[1:]); err != nil {
			return "", err
		}
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return target, nil
}

func portName(name, proto string) servicemap.ServicePortName {
	nsName, port, _ := strings.Cut(name, ":")
	ns, svc, _ := strings.Cut(nsName, "/")
	return servicemap.ServicePortName{Namespace: ns, Name: svc, Port: port, Protocol: v1.Protocol(proto)}
}

// nodeAddresses are the addresses of the Node named node in the input.
func nodeAddresses(in *inputs, node string) []netip.Addr {
	var out []netip.Addr
	for _, n := range in.Nodes {
		if n.Name != node {
			continue
		}
		for _, a := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); err == nil && (a.Type == v1.NodeInternalIP || a.Type == v1.NodeExternalIP) {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// writeExplanation prints an explanation for people.
func writeExplanation(w io.Writer, x *explanation) {
	fmt.Fprintf(w, "Service %s, seen from node %q", x.Service, x.Node)
	if x.Zone != "" {
		fmt.Fprintf(w, " in zone %q", x.Zone)
	}
	fmt.Fprintf(w, ", %s\n", x.IPFamily)
	if x.Skipped != "" {
		fmt.Fprintf(w, "\nnot programmed: %s\n", x.Skipped)
	}
	for _, p := range x.Ports {
		fmt.Fprintf(w, "\nport %s (%s)\n", p.Name, p.Protocol)
		f := p.Frontends
		fmt.Fprintf(w, "  frontends: cluster IP %s", f.ClusterIP)
		if f.NodePort != 0 {
			fmt.Fprintf(w, ", node port %d", f.NodePort)
		}
		if len(f.ExternalIPs) > 0 {
			fmt.Fprintf(w, ", external IPs %s", strings.Join(f.ExternalIPs, ","))
		}
		if len(f.LoadBalancerIPs) > 0 {
			fmt.Fprintf(w, ", load-balancer IPs %s", strings.Join(f.LoadBalancerIPs, ","))
		}
		if len(f.SourceRanges) > 0 {
			fmt.Fprintf(w, " (from %s)", strings.Join(f.SourceRanges, ","))
		}
		pol := p.Policies
		fmt.Fprintf(w, "\n  policies: internal %s, external %s, session affinity %s", pol.InternalTrafficPolicy, pol.ExternalTrafficPolicy, pol.SessionAffinity)
		if pol.AffinitySeconds > 0 {
			fmt.Fprintf(w, " (%ds)", pol.AffinitySeconds)
		}
		if pol.HealthCheckNodePort != 0 {
			fmt.Fprintf(w, ", health check node port %d", pol.HealthCheckNodePort)
		}
		fmt.Fprintf(w, "\n  topology: %s", p.Topology.Mode)
		if p.Topology.Reason != "" {
			fmt.Fprintf(w, " (%s)", p.Topology.Reason)
		}
		if p.Topology.ClusterFallback {
			fmt.Fprint(w, "; no ready endpoint: using serving terminating ones")
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "  endpoints:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    ADDRESS\tSLICE\tNODE\tZONE\tCONDITIONS\tHINTS\tVERDICT")
		for _, e := range p.Endpoints {
			verdict := e.Verdict
			switch {
			case e.Reason != "" && (e.Cluster || e.Local):
				verdict += " (" + e.Reason + ")"
			case e.Reason != "":
				verdict += ": " + e.Reason
			}
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Address, e.Slice, dash(e.NodeName), dash(e.Zone),
				strings.Join(e.Conditions, ","), hints(e), verdict)
		}
		tw.Flush()
		fmt.Fprintln(w, "  traffic:")
		for _, t := range p.Traffic {
			fmt.Fprintf(w, "    %s: %s", t.Kind, t.Verdict)
			if len(t.Endpoints) > 0 {
				fmt.Fprintf(w, " to %s", strings.Join(t.Endpoints, ","))
			}
			if t.Note != "" {
				fmt.Fprintf(w, " (%s)", t.Note)
			}
			fmt.Fprintln(w)
		}
		for _, path := range p.Paths {
			fmt.Fprintf(w, "  a new connection from %s (%s) to %s (%s): %s\n", path.From, path.Source, path.To, path.Frontend, path.Verdict)
			if path.Verdict != "forward" {
				continue
			}
			fmt.Fprintf(w, "    masqueraded: %v; short-circuited: %v; balanced by %s:\n", path.Masquerade, path.ShortCircuited, path.Balance)
			for _, b := range path.Endpoints {
				fmt.Fprintf(w, "      %s  %s", b.Address, b.Share)
				if b.Rule != "" {
					fmt.Fprintf(w, "  %s", b.Rule)
				}
				fmt.Fprintln(w)
			}
		}
		if len(p.Kernel) > 0 {
			fmt.Fprintln(w, "  in the kernel:")
			for _, l := range p.Kernel {
				fmt.Fprintf(w, "    %s\n", l)
			}
		}
	}
	if len(x.Warnings) > 0 {
		fmt.Fprintln(w, "\nwarnings:")
		for _, m := range x.Warnings {
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func hints(e explainEP) string {
	var parts []string
	if len(e.ZoneHints) > 0 {
		parts = append(parts, "zones:"+strings.Join(e.ZoneHints, ","))
	}
	if len(e.NodeHints) > 0 {
		parts = append(parts, "nodes:"+strings.Join(e.NodeHints, ","))
	}
	return dash(strings.Join(parts, " "))
}
