//go:build linux

package backendtest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
)

// handNFT is a throwaway backend that exists only to validate the suite:
// it is NOT lbkit's nftables backend. Every Sync replaces one nft table
// with a ruleset rendered by hand below, in one `nft -f` transaction;
// Cleanup deletes the table. It may carry one deliberate bug, so that
// TestSuiteCatchesBugs can show each scenario failing for the defect it is
// about.
type handNFT struct {
	table string
	bug   string
}

// The bugs handNFT can carry, each with the scenarios that must catch it.
// "noop" programs nothing at all: every scenario must fail.
var bugs = []struct {
	bug       string
	scenarios []string
	opts      func(*backendtest.SuiteOptions)
}{
	{bug: "noop", scenarios: backendtest.Scenarios()},
	{bug: "first-endpoint-only", scenarios: []string{"ClusterIPSpread", "NotReadyEndpoint", "SessionAffinity"}},
	{bug: "all-endpoints", scenarios: []string{"NotReadyEndpoint", "TerminatingFallback", "ExternalTrafficPolicyLocal"}},
	{bug: "no-reject", scenarios: []string{"NoEndpointsRejects"}},
	{bug: "no-affinity", scenarios: []string{"SessionAffinity"}},
	{bug: "no-protocol-match", scenarios: []string{"TCPAndUDPSamePort"}},
	{bug: "no-node-ports", scenarios: []string{"NodePort", "ExternalTrafficPolicyLocal", "StaleUDPFlow"}},
	{bug: "external-as-cluster", scenarios: []string{"ExternalTrafficPolicyLocal"}},
	{bug: "no-source-ranges", scenarios: []string{"LoadBalancerSourceRanges"}},
	{bug: "no-load-balancer-ips", scenarios: []string{"LoadBalancerSourceRanges"}},
	{bug: "keep-conntrack", scenarios: []string{"StaleUDPFlow"},
		opts: func(o *backendtest.SuiteOptions) { o.DisableConntrack = true }},
	{bug: "cleanup-flushes-ruleset", scenarios: []string{"Cleanup"}},
	{bug: "cleanup-leaves-chains", scenarios: []string{"Cleanup"}},
	{bug: "full-sync-only-adds", scenarios: []string{"Restart"}},
}

func newHandNFT(bug string) backendtest.Factory {
	return func(t *testing.T, n *backendtest.Network) backends.Interface {
		return &handNFT{table: "lbkit_handnft", bug: bug}
	}
}

func (b *handNFT) Name() string { return "handnft" }

func (b *handNFT) Sync(ctx context.Context, prev, next *servicemap.Snapshot) error {
	if b.bug == "noop" {
		return nil
	}
	replace := fmt.Sprintf("add table ip %s\ndelete table ip %s\n", b.table, b.table)
	if prev == nil && b.bug == "full-sync-only-adds" {
		replace = ""
	}
	return nft(ctx, replace+b.render(next))
}

func (b *handNFT) Cleanup(ctx context.Context) error {
	switch b.bug {
	case "cleanup-flushes-ruleset":
		return nft(ctx, "flush ruleset\n")
	case "cleanup-leaves-chains":
		return nft(ctx, fmt.Sprintf("add table ip %s\nflush table ip %s\n", b.table, b.table))
	}
	return nft(ctx, fmt.Sprintf("add table ip %s\ndelete table ip %s\n", b.table, b.table))
}

// leftovers lists the backend's table, if it exists.
func (b *handNFT) leftovers() (string, error) {
	out, err := exec.Command("nft", "list", "table", "ip", b.table).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "No such file or directory") {
			return "", nil
		}
		return "", fmt.Errorf("nft list table: %w: %s", err, out)
	}
	return string(out), nil
}

func nft(ctx context.Context, script string) error {
	cmd := exec.CommandContext(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f: %w: %s\n%s", err, out, script)
	}
	return nil
}

// ruleset collects the parts of handNFT's table while rendering.
type ruleset struct {
	services, checks, firewall strings.Builder // rules of the fixed chains
	sets, chains               strings.Builder // declarations
	declared                   map[string]bool
}

func rule(sb *strings.Builder, format string, args ...any) {
	fmt.Fprintf(sb, "\t\t"+format+";\n", args...)
}

// render writes the table: nat chains that DNAT each frontend to a chain
// per endpoint list (random choice, optional affinity sets), a filter
// chain before DNAT for source ranges, and filter chains after it that
// reject or drop frontends with no endpoint to use.
func (b *handNFT) render(snap *servicemap.Snapshot) string {
	r := &ruleset{declared: map[string]bool{}}
	for i, p := range snap.Ports() {
		b.renderPort(r, i, p)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "table ip %s {\n", b.table)
	out.WriteString(r.sets.String())
	for _, c := range []struct{ name, hook, body string }{
		{"nat_prerouting", "type nat hook prerouting priority dstnat", "jump services"},
		{"nat_output", "type nat hook output priority -100", "jump services"},
		{"filter_prerouting", "type filter hook prerouting priority -110", "jump firewall"},
		{"filter_forward", "type filter hook forward priority filter", "jump checks"},
		{"filter_input", "type filter hook input priority filter", "jump checks"},
		{"filter_output", "type filter hook output priority filter", "jump checks"},
	} {
		fmt.Fprintf(&out, "\tchain %s {\n\t\t%s; policy accept;\n\t\t%s;\n\t}\n", c.name, c.hook, c.body)
	}
	for _, c := range []struct {
		name string
		body *strings.Builder
	}{{"services", &r.services}, {"checks", &r.checks}, {"firewall", &r.firewall}} {
		fmt.Fprintf(&out, "\tchain %s {\n%s\t}\n", c.name, c.body.String())
	}
	out.WriteString(r.chains.String())
	out.WriteString("}\n")
	return out.String()
}

// renderPort writes the rules of service port number i.
func (b *handNFT) renderPort(r *ruleset, i int, p *servicemap.ServicePort) {
	proto := strings.ToLower(string(p.Protocol))
	match := func(addr netip.Addr, port uint16) string {
		if b.bug == "no-protocol-match" {
			return fmt.Sprintf("ip daddr %v th dport %d", addr, port)
		}
		return fmt.Sprintf("ip daddr %v %s dport %d", addr, proto, port)
	}
	internal, external := p.Topology.Cluster, p.Topology.Cluster
	if p.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal {
		internal = p.Topology.Local
	}
	if p.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal && b.bug != "external-as-cluster" {
		external = p.Topology.Local
	}
	if b.bug == "all-endpoints" {
		internal, external = p.Endpoints, p.Endpoints
	}

	type frontend struct {
		match string
		eps   []endpoints.Endpoint
		kind  string
	}
	fronts := []frontend{{match(p.ClusterIP, p.Port), internal, "int"}}
	extIPs := p.ExternalIPs
	if b.bug != "no-load-balancer-ips" {
		extIPs = slices.Concat(extIPs, p.LoadBalancerIPs)
	}
	for _, a := range extIPs {
		fronts = append(fronts, frontend{match(a, p.Port), external, "ext"})
	}
	if p.NodePort != 0 && b.bug != "no-node-ports" {
		fronts = append(fronts, frontend{fmt.Sprintf("fib daddr type local %s dport %d", proto, p.NodePort), external, "ext"})
	}
	for _, f := range fronts {
		if len(f.eps) == 0 {
			switch {
			case p.Topology.HasEndpoints:
				rule(&r.checks, "%s drop", f.match)
			case b.bug != "no-reject":
				rule(&r.checks, "%s reject", f.match)
			}
			continue
		}
		lb := fmt.Sprintf("svc_%d_%s", i, f.kind)
		rule(&r.services, "%s goto %s", f.match, lb)
		b.renderLB(r, i, p, lb, f.eps)
	}
	if len(p.LoadBalancerSourceRanges) > 0 && b.bug != "no-source-ranges" {
		var ranges []string
		for _, pr := range p.LoadBalancerSourceRanges {
			ranges = append(ranges, pr.String())
		}
		for _, a := range p.LoadBalancerIPs {
			rule(&r.firewall, "%s ip saddr != { %s } drop", match(a, p.Port), strings.Join(ranges, ", "))
		}
	}
}

// renderLB declares the chain lb that picks one of eps for port i, and
// the chain (and, with affinity, the set) of each endpoint.
func (b *handNFT) renderLB(r *ruleset, i int, p *servicemap.ServicePort, lb string, eps []endpoints.Endpoint) {
	if r.declared[lb] {
		return
	}
	r.declared[lb] = true
	affinity := p.Affinity.ClientIP && b.bug != "no-affinity"
	epName := func(ep endpoints.Endpoint) string {
		j := slices.IndexFunc(p.Endpoints, func(e endpoints.Endpoint) bool { return e.Addr == ep.Addr })
		return fmt.Sprintf("ep_%d_%d", i, j)
	}
	fmt.Fprintf(&r.chains, "\tchain %s {\n", lb)
	if affinity {
		for _, ep := range eps {
			rule(&r.chains, "ip saddr @aff_%s goto %s", epName(ep), epName(ep))
		}
	}
	if b.bug == "first-endpoint-only" {
		rule(&r.chains, "goto %s", epName(eps[0]))
	} else {
		var vmap []string
		for k, ep := range eps {
			vmap = append(vmap, fmt.Sprintf("%d : goto %s", k, epName(ep)))
		}
		rule(&r.chains, "numgen random mod %d vmap { %s }", len(eps), strings.Join(vmap, ", "))
	}
	r.chains.WriteString("\t}\n")
	for _, ep := range eps {
		name := epName(ep)
		if r.declared[name] {
			continue // shared by the internal and external lists
		}
		r.declared[name] = true
		fmt.Fprintf(&r.chains, "\tchain %s {\n", name)
		if affinity {
			rule(&r.chains, "update @aff_%s { ip saddr }", name)
			fmt.Fprintf(&r.sets, "\tset aff_%s {\n\t\ttype ipv4_addr; flags dynamic,timeout; timeout %ds;\n\t}\n",
				name, int(p.Affinity.Timeout.Seconds()))
		}
		rule(&r.chains, "meta l4proto %s dnat to %v", strings.ToLower(string(p.Protocol)), ep.Addr)
		r.chains.WriteString("\t}\n")
	}
}

// TestSuite runs the whole suite against handNFT, with the default
// Leftovers check (the nft ruleset compared with the one before). In
// parallel it takes half the time (about 10s instead of 19s here).
func TestSuite(t *testing.T) {
	backendtest.Run(t, newHandNFT(""), backendtest.SuiteOptions{Parallel: true})
}

// TestSuiteLeftoversFunc runs scenario Cleanup with a Leftovers function.
func TestSuiteLeftoversFunc(t *testing.T) {
	b := &handNFT{table: "lbkit_handnft"}
	var skip = map[string]string{}
	for _, s := range backendtest.Scenarios() {
		if s != "Cleanup" {
			skip[s] = "run by TestSuite"
		}
	}
	backendtest.Run(t, func(*testing.T, *backendtest.Network) backends.Interface { return b },
		backendtest.SuiteOptions{Leftovers: b.leftovers, Skip: skip})
}

// bugEnv tells a child test process which bug to run the suite with.
const bugEnv = "LBKIT_BACKENDTEST_BUG"

// TestSuiteCatchesBugs runs the suite against handNFT with one bug at a
// time, each in a child process (a failing suite cannot run inside a
// passing test), and checks that every scenario meant to catch the bug
// fails. It shows that no scenario passes vacuously.
func TestSuiteCatchesBugs(t *testing.T) {
	backendtest.Require(t, "ip", "nft")
	if testing.Short() {
		t.Skip("runs the suite 14 more times; skipped with -short")
	}
	failRE := regexp.MustCompile(`(?m)^\s*--- FAIL: TestSuiteBugChild/(\S+)`)
	for _, c := range bugs {
		t.Run(c.bug, func(t *testing.T) {
			t.Parallel()
			run := "^TestSuiteBugChild$/^(" + strings.Join(c.scenarios, "|") + ")$"
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+run, "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), bugEnv+"="+c.bug)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var failed []string
			for _, m := range failRE.FindAllStringSubmatch(out.String(), -1) {
				failed = append(failed, m[1])
			}
			slices.Sort(failed)
			want := slices.Sorted(slices.Values(c.scenarios))
			if err == nil || !slices.Equal(failed, want) {
				t.Errorf("bug %q: failed scenarios %v, want %v (child: %v)\n%s", c.bug, failed, want, err, out.String())
			}
		})
	}
}

// TestSuiteBugChild is the child process of TestSuiteCatchesBugs.
func TestSuiteBugChild(t *testing.T) {
	bug := os.Getenv(bugEnv)
	if bug == "" {
		t.Skip("run by TestSuiteCatchesBugs")
	}
	opts := backendtest.SuiteOptions{Timeout: 500 * time.Millisecond, DropTimeout: 300 * time.Millisecond, Parallel: true}
	for _, c := range bugs {
		if c.bug == bug && c.opts != nil {
			c.opts(&opts)
		}
	}
	backendtest.Run(t, newHandNFT(bug), opts)
}
