package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/servicemap"
)

// fileList is a repeatable -f flag.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(s string) error { *f = append(*f, s); return nil }

// resolveFlags are the flags every command that resolves manifests takes.
type resolveFlags struct {
	files     fileList
	node      string
	family    string
	proxyName string
	output    string
	// serviceCIDRs are the service ranges given on the command line, next
	// to the ServiceCIDR objects of the input.
	serviceCIDRs prefixList
}

func (r *resolveFlags) register(fs *flag.FlagSet) {
	fs.Var(&r.files, "f", "manifest file (repeatable; - for standard input); default: the embedded sample")
	fs.StringVar(&r.node, "node", "", "node to resolve for (default: the only Node in the input, if there is exactly one)")
	fs.StringVar(&r.family, "ip-family", "IPv4", "IP family: IPv4 or IPv6")
	fs.StringVar(&r.proxyName, "proxy-name", "", "handle only Services labelled service.kubernetes.io/service-proxy-name=NAME")
	fs.Var(&r.serviceCIDRs, "service-cidr", "service ranges, comma separated, next to the input's ServiceCIDR objects (nftables drops new connections to their unallocated addresses)")
}

// tracker returns the Tracker the flags describe, for node and family,
// with the input's ServiceCIDR objects.
func (r *resolveFlags) tracker(in *inputs, node string, family v1.IPFamily) *servicemap.Tracker {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node, IPFamily: family, ProxyName: r.proxyName, ServiceCIDRs: r.serviceCIDRs})
	for _, sc := range in.ServiceCIDRs {
		tr.OnServiceCIDRAdd(sc)
	}
	return tr
}

// parseFlags parses args into fs, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlagsAllowingArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// parseFlagsAllowingArgs is parseFlags, leaving arguments after the flags
// in fs.Args. -h and --help make it return a *helpText with the command's
// usage and every flag.
func parseFlagsAllowingArgs(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return commandHelp(fs)
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// resolved is the outcome of loading manifests into a Tracker.
type resolved struct {
	snap     *servicemap.Snapshot
	warnings []string
}

func (r *resolveFlags) family_() (v1.IPFamily, error) {
	switch strings.ToLower(r.family) {
	case "ipv4", "4":
		return v1.IPv4Protocol, nil
	case "ipv6", "6":
		return v1.IPv6Protocol, nil
	}
	return "", fmt.Errorf("%w: --ip-family must be IPv4 or IPv6, not %q", errUsage, r.family)
}

// resolve loads the manifests and returns the snapshot a node would use.
func (r *resolveFlags) resolve() (*resolved, error) {
	family, err := r.family_()
	if err != nil {
		return nil, err
	}
	in, err := load(r.files)
	if err != nil {
		return nil, err
	}
	return resolveInputs(r, in, family), nil
}

// resolveInputs feeds loaded objects to a Tracker and takes its snapshot.
func resolveInputs(r *resolveFlags, in *inputs, family v1.IPFamily) *resolved {
	res, _ := resolveTracked(r, in, family)
	return res
}

// servicesWithoutFamily counts the Services that would be programmed but
// have no cluster IP of the family.
func servicesWithoutFamily(svcs []*v1.Service, family v1.IPFamily, snap *servicemap.Snapshot) int {
	n := 0
	for _, s := range svcs {
		if s.Spec.Type == v1.ServiceTypeExternalName || s.Spec.ClusterIP == "" || s.Spec.ClusterIP == v1.ClusterIPNone {
			continue
		}
		if len(snap.Service(s.Namespace, s.Name)) > 0 {
			continue
		}
		has := slices.Contains(s.Spec.IPFamilies, family)
		if len(s.Spec.IPFamilies) == 0 {
			a, err := netip.ParseAddr(s.Spec.ClusterIP)
			has = err == nil && a.Is6() == (family == v1.IPv6Protocol)
		}
		if !has {
			n++
		}
	}
	return n
}

// resolveTracked is resolveInputs, returning the Tracker too.
func resolveTracked(r *resolveFlags, in *inputs, family v1.IPFamily) (*resolved, *servicemap.Tracker) {
	node := r.node
	if node == "" && len(in.Nodes) == 1 {
		node = in.Nodes[0].Name
	}
	tr := r.tracker(in, node, family)
	for _, n := range in.Nodes {
		tr.OnNodeAdd(n)
	}
	for _, es := range in.Slices {
		tr.OnEndpointSliceAdd(es)
	}
	for _, s := range in.Services {
		tr.OnServiceAdd(s)
	}
	out := &resolved{snap: tr.Snapshot(), warnings: append([]string{}, in.Warnings...)}
	if node != "" && !slices.ContainsFunc(in.Nodes, func(n *v1.Node) bool { return n.Name == node }) {
		out.warnings = append(out.warnings, fmt.Sprintf("--node %s: no Node of that name in the input, so no zone is known", node))
	}
	if missing := servicesWithoutFamily(in.Services, family, out.snap); missing > 0 {
		out.warnings = append(out.warnings, fmt.Sprintf("--ip-family %s: %d of %d services have no %s cluster IP and are not programmed",
			family, missing, len(in.Services), family))
	}
	for _, w := range tr.Warnings() {
		out.warnings = append(out.warnings, w.String())
	}
	return out, tr
}

func runResolve(args []string, stdout, stderr io.Writer) error {
	var rf resolveFlags
	fs := flag.NewFlagSet("resolve", flag.ContinueOnError)
	rf.register(fs)
	fs.StringVar(&rf.output, "o", "table", "output format: table or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if rf.output != "table" && rf.output != "json" {
		return fmt.Errorf("%w: -o must be table or json, not %q", errUsage, rf.output)
	}
	res, err := rf.resolve()
	if err != nil {
		return err
	}
	if rf.output == "json" {
		return writeJSON(stdout, res)
	}
	writeTable(stdout, res)
	return nil
}
