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
	// nodePortAddrs restricts node ports, as the variant asks; pods are
	// the cluster CIDRs, whose traffic to a cluster IP is not masqueraded.
	nodePortAddrs, pods []netip.Prefix
	// masqueradeAll masquerades all cluster-IP traffic, as the variant asks.
	masqueradeAll bool
	// fam is "ip" or "ip6", as the last snapshot synced.
	fam string
}

// The bugs handNFT can carry, each with the subtests of the IPv4 family
// that must catch it: scenario names, or variant/scenario. "noop"
// programs nothing at all: every scenario must fail, in both families.
var bugs = []struct {
	bug       string
	scenarios []string
	opts      func(*backendtest.SuiteOptions)
	ipv6      bool // the IPv6 family instead
}{
	{bug: "noop", scenarios: backendtest.Scenarios()},
	{bug: "noop", scenarios: backendtest.Scenarios(), ipv6: true},
	{bug: "first-endpoint-only", scenarios: []string{"ClusterIPSpread", "NotReadyEndpoint", "SessionAffinity", "Kubernetes131765ExternalIPLocalFromPod"}},
	{bug: "all-endpoints", scenarios: []string{"NotReadyEndpoint", "TerminatingFallback", "ExternalTrafficPolicyLocal", "Kubernetes131765ExternalIPLocalFromPod"}},
	{bug: "no-reject", scenarios: []string{"NoEndpointsRejects"}},
	{bug: "no-affinity", scenarios: []string{"SessionAffinity"}},
	{bug: "no-protocol-match", scenarios: []string{"TCPAndUDPSamePort"}},
	{bug: "no-node-ports", scenarios: []string{"NodePort", "NodeAddresses", "ExternalTrafficPolicyLocal", "StaleUDPFlow", "Kubernetes96174UDPNodePortExternalIP"}},
	{bug: "node-ports-everywhere", scenarios: []string{"NodePortAddresses/NodeAddresses"}},
	{bug: "masquerade-nothing", scenarios: []string{"ClusterIPSpread", "NodePort"}},
	{bug: "masquerade-everything", scenarios: []string{"ExternalTrafficPolicyLocal", "NoClusterCIDRs/ClusterIPSpread", "PodToClusterIP"}},
	{bug: "ignore-masquerade-all", scenarios: []string{"MasqueradeAll/PodToClusterIP"}},
	{bug: "external-as-cluster", scenarios: []string{"ExternalTrafficPolicyLocal", "Kubernetes131765ExternalIPLocalFromPod"}},
	{bug: "no-pod-short-circuit", scenarios: []string{"Kubernetes131765ExternalIPLocalFromPod"}},
	{bug: "no-source-ranges", scenarios: []string{"LoadBalancerSourceRanges"}},
	{bug: "no-load-balancer-ips", scenarios: []string{"LoadBalancerSourceRanges", "Kubernetes131765ExternalIPLocalFromPod"}},
	{bug: "keep-conntrack", scenarios: []string{"StaleUDPFlow", "Kubernetes139628UDPScaleToZero", "Kubernetes96174UDPNodePortExternalIP"},
		opts: func(o *backendtest.SuiteOptions) { o.DisableConntrack = true }},
	// Every scenario's teardown finds the foreign tables gone.
	{bug: "cleanup-flushes-ruleset", scenarios: backendtest.Scenarios()},
	{bug: "cleanup-leaves-chains", scenarios: []string{"Cleanup"}},
	{bug: "full-sync-only-adds", scenarios: []string{"Restart"}},
}

func newHandNFT(bug string) backendtest.Factory {
	return func(t *testing.T, n *backendtest.Network) backends.Interface {
		return &handNFT{table: "lbkit_handnft", bug: bug, nodePortAddrs: n.NodePortAddresses(), pods: n.ClusterCIDRs(), masqueradeAll: n.MasqueradeAll()}
	}
}

func (b *handNFT) Name() string { return "handnft" }

func (b *handNFT) Sync(ctx context.Context, prev, next *servicemap.Snapshot) error {
	if b.bug == "noop" {
		return nil
	}
	b.fam = "ip"
	if next.IPFamily() == v1.IPv6Protocol {
		b.fam = "ip6"
	}
	replace := fmt.Sprintf("add table %[1]s %[2]s\ndelete table %[1]s %[2]s\n", b.fam, b.table)
	if prev == nil && b.bug == "full-sync-only-adds" {
		replace = ""
	}
	return nft(ctx, replace+b.render(next))
}

func (b *handNFT) Cleanup(ctx context.Context) error {
	var script string
	for _, fam := range []string{"ip", "ip6"} {
		switch b.bug {
		case "cleanup-flushes-ruleset":
			return nft(ctx, "flush ruleset\n")
		case "cleanup-leaves-chains":
			script += fmt.Sprintf("add table %[1]s %[2]s\nflush table %[1]s %[2]s\n", fam, b.table)
		default:
			script += fmt.Sprintf("add table %[1]s %[2]s\ndelete table %[1]s %[2]s\n", fam, b.table)
		}
	}
	return nft(ctx, script)
}

// leftovers lists the backend's tables, if they exist.
func (b *handNFT) leftovers() (string, error) {
	var all string
	for _, fam := range []string{"ip", "ip6"} {
		out, err := exec.Command("nft", "list", "table", fam, b.table).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "No such file or directory") {
				continue
			}
			return "", fmt.Errorf("nft list table: %w: %s", err, out)
		}
		all += string(out)
	}
	return all, nil
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
	fmt.Fprintf(&out, "table %s %s {\n", b.fam, b.table)
	out.WriteString(r.sets.String())
	for _, c := range []struct{ name, hook, body string }{
		{"nat_prerouting", "type nat hook prerouting priority dstnat", "jump services"},
		{"nat_output", "type nat hook output priority -100", "jump services"},
		{"nat_postrouting", "type nat hook postrouting priority srcnat", "meta mark " + masqMark + " masquerade"},
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

// masqMark marks connections to masquerade.
const masqMark = "0x4000"

// renderPort writes the rules of service port number i.
func (b *handNFT) renderPort(r *ruleset, i int, p *servicemap.ServicePort) {
	proto := strings.ToLower(string(p.Protocol))
	match := func(addr netip.Addr, port uint16) string {
		if b.bug == "no-protocol-match" {
			return fmt.Sprintf("%s daddr %v th dport %d", b.fam, addr, port)
		}
		return fmt.Sprintf("%s daddr %v %s dport %d", b.fam, addr, proto, port)
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

	// Masquerade: cluster-IP traffic from outside the pods, and external
	// traffic with the Cluster policy (its endpoint may be elsewhere).
	var podsMasq, extMasq string
	switch {
	case b.masqueradeAll && b.bug != "ignore-masquerade-all":
		podsMasq = "meta mark set " + masqMark + " "
	case len(b.pods) > 0:
		podsMasq = fmt.Sprintf("%s saddr != { %s } meta mark set %s ", b.fam, joinPrefixes(b.pods), masqMark)
	}
	if p.ExternalTrafficPolicy != v1.ServiceExternalTrafficPolicyLocal {
		extMasq = "meta mark set " + masqMark + " "
	}
	switch b.bug {
	case "masquerade-nothing":
		podsMasq, extMasq = "", ""
	case "masquerade-everything":
		podsMasq, extMasq = "meta mark set "+masqMark+" ", "meta mark set "+masqMark+" "
	}
	type frontend struct {
		match string
		eps   []endpoints.Endpoint
		kind  string
		masq  string
	}
	fronts := []frontend{{match(p.ClusterIP, p.Port), internal, "int", podsMasq}}
	extIPs := p.ExternalIPs
	if b.bug != "no-load-balancer-ips" {
		extIPs = slices.Concat(extIPs, p.LoadBalancerIPs)
	}
	for _, a := range extIPs {
		fronts = append(fronts, frontend{match(a, p.Port), external, "ext", extMasq})
	}
	if p.NodePort != 0 && b.bug != "no-node-ports" {
		local := fmt.Sprintf("fib daddr type local %s daddr != %s ", b.fam, map[string]string{"ip": "127.0.0.0/8", "ip6": "::1"}[b.fam])
		var allowed []netip.Prefix
		for _, pr := range b.nodePortAddrs {
			if pr.Addr().Is6() == (b.fam == "ip6") {
				allowed = append(allowed, pr)
			}
		}
		if len(allowed) > 0 && b.bug != "node-ports-everywhere" {
			local += fmt.Sprintf("%s daddr { %s } ", b.fam, joinPrefixes(allowed))
		}
		fronts = append(fronts, frontend{fmt.Sprintf("%s%s dport %d", local, proto, p.NodePort), external, "ext", extMasq})
	}
	for _, f := range fronts {
		// Pods reach an external address of a Local service through the
		// cluster's endpoints (short-circuit), local ones or not.
		if f.kind == "ext" && len(b.pods) > 0 && len(p.Topology.Cluster) > 0 &&
			p.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal && b.bug != "no-pod-short-circuit" {
			lb := fmt.Sprintf("svc_%d_pods", i)
			rule(&r.services, "%s %s saddr { %s } goto %s", f.match, b.fam, joinPrefixes(b.pods), lb)
			b.renderLB(r, i, p, lb, p.Topology.Cluster)
		}
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
		if f.masq != "" { // a rule of its own: its condition must not gate the goto
			rule(&r.services, "%s %s", f.match, strings.TrimSpace(f.masq))
		}
		rule(&r.services, "%s goto %s", f.match, lb)
		b.renderLB(r, i, p, lb, f.eps)
	}
	if len(p.LoadBalancerSourceRanges) > 0 && b.bug != "no-source-ranges" {
		var ranges []string
		for _, pr := range p.LoadBalancerSourceRanges {
			ranges = append(ranges, pr.String())
		}
		for _, a := range p.LoadBalancerIPs {
			rule(&r.firewall, "%s %s saddr != { %s } drop", match(a, p.Port), b.fam, strings.Join(ranges, ", "))
		}
	}
}

func joinPrefixes(ps []netip.Prefix) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return strings.Join(out, ", ")
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
			rule(&r.chains, "%s saddr @aff_%s goto %s", b.fam, epName(ep), epName(ep))
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
			rule(&r.chains, "update @aff_%s { %s saddr }", name, b.fam)
			fmt.Fprintf(&r.sets, "\tset aff_%s {\n\t\ttype %s; flags dynamic,timeout; timeout %ds;\n\t}\n",
				name, map[string]string{"ip": "ipv4_addr", "ip6": "ipv6_addr"}[b.fam], p.Affinity.TimeoutSeconds())
		}
		rule(&r.chains, "meta l4proto %s dnat to %v", strings.ToLower(string(p.Protocol)), ep.Addr)
		r.chains.WriteString("\t}\n")
	}
}

// TestSuite runs the whole suite, every variant, against handNFT, with the
// default Leftovers check (the nft ruleset compared with the one before).
func TestSuite(t *testing.T) {
	backendtest.Run(t, newHandNFT(""), backendtest.SuiteOptions{Parallel: true})
}

// TestSuiteLeftoversFunc runs scenario Cleanup with a Leftovers function,
// in both families with the default options.
func TestSuiteLeftoversFunc(t *testing.T) {
	b := &handNFT{table: "lbkit_handnft"}
	skip := map[string]string{
		backendtest.VariantNodePortAddresses: "run by TestSuite",
		backendtest.VariantNoClusterCIDRs:    "run by TestSuite",
		backendtest.VariantMasqueradeAll:     "run by TestSuite",
	}
	for _, s := range backendtest.Scenarios() {
		if s != "Cleanup" {
			skip[s] = "run by TestSuite"
		}
	}
	backendtest.Run(t, func(_ *testing.T, n *backendtest.Network) backends.Interface {
		b.pods = n.ClusterCIDRs()
		return b
	}, backendtest.SuiteOptions{Leftovers: b.leftovers, Skip: skip})
}

// bugEnv tells a child test process which bug to run the suite with.
const bugEnv = "LBKIT_BACKENDTEST_BUG"

// TestSuiteCatchesBugs runs the suite against handNFT with one bug at a
// time, each in a child process (a failing suite cannot run inside a
// passing test), and checks that every scenario meant to catch the bug
// fails. It shows that no scenario passes vacuously. The bugs run in the
// IPv4 family (and "noop" in IPv6 too): the scenarios are the same code
// in both, and TestSuite runs the IPv6 ones against the working backend.
func TestSuiteCatchesBugs(t *testing.T) {
	backendtest.Require(t, "ip", "nft")
	if testing.Short() {
		t.Skip("runs the suite once per bug; skipped with -short")
	}
	for _, c := range bugs {
		family := backendtest.VariantIPv4
		if c.ipv6 {
			family = backendtest.VariantIPv6
		}
		t.Run(c.bug+"/"+family, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+childPattern(family, c.scenarios), "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), bugEnv+"="+c.bug)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			failed := failedScenarios(out.String(), family)
			want := slices.Sorted(slices.Values(c.scenarios))
			if err == nil || !slices.Equal(failed, want) {
				t.Errorf("bug %q: failed scenarios %v, want %v (child: %v)\n%s", c.bug, failed, want, err, out.String())
			}
		})
	}
}

// childPattern is the -test.run pattern that runs exactly paths (scenario,
// or variant/scenario) of one family of TestSuiteBugChild.
func childPattern(family string, paths []string) string {
	var top, nested []string
	for _, p := range paths {
		first, rest, ok := strings.Cut(p, "/")
		if !slices.Contains(top, first) {
			top = append(top, first)
		}
		if ok && !slices.Contains(nested, rest) {
			nested = append(nested, rest)
		}
	}
	pattern := "^TestSuiteBugChild$/^" + family + "$/^(" + strings.Join(top, "|") + ")$"
	if len(nested) > 0 {
		pattern += "/^(" + strings.Join(nested, "|") + ")$"
	}
	return pattern
}

// failedScenarios lists the subtests of family that failed, sorted, as
// scenario or variant/scenario; a variant that failed because one of its
// scenarios did is not listed itself.
func failedScenarios(out, family string) []string {
	re := regexp.MustCompile(`(?m)^\s*--- FAIL: TestSuiteBugChild/` + family + `/(\S+)`)
	var failed []string
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		failed = append(failed, m[1])
	}
	return slices.Sorted(slices.Values(slices.DeleteFunc(failed, func(f string) bool {
		return slices.ContainsFunc(failed, func(g string) bool { return strings.HasPrefix(g, f+"/") })
	})))
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
