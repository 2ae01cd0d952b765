package backendtest

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/conntrack"
	"github.com/lbkit/lbkit/servicemap"
)

// Factory builds the backend under test for one scenario's Network. Run
// calls it inside n.InNode, so a backend that opens netlink sockets or
// starts tools when it is made gets the node's namespace; sockets it opens
// later, from other goroutines, must be aimed at n.NodeNS() explicitly.
// Factory may call t.Fatal. It is called once per scenario, twice in
// "Restart".
type Factory func(t *testing.T, n *Network) backends.Interface

// SuiteOptions configure Run. The zero value runs every scenario with
// conntrack cleanup, on a Network with default options.
type SuiteOptions struct {
	// Network configures each scenario's Network. Backends and IPv6 are
	// ignored: the scenarios need three backends, and the variant decides
	// the family.
	Network NetworkOptions
	// Require lists the tools the backend needs on PATH (for example
	// "iptables-restore"), checked with Require next to the suite's own
	// ("ip", "nft").
	Require []string
	// DisableConntrack stops Run from clearing stale UDP flows with
	// package conntrack after each successful Sync. Set it for a backend
	// that clears them itself, inside Sync: scenario StaleUDPFlow still
	// asserts that a client reaches the new endpoint.
	DisableConntrack bool
	// Leftovers describes every object of the backend still present in the
	// node: "" when there is none. Run calls it inside n.InNode. Scenario
	// Cleanup requires it to report something while the backend is
	// programmed, and nothing after Cleanup. Nil compares the node's
	// objects with those it had before the backend was made: nft tables,
	// chains, rules and sets; user chains and rules of iptables-legacy and
	// ip6tables-legacy; IPVS services; ipsets (each when its tool is on
	// PATH). The empty built-in chains iptables creates by itself are not
	// counted.
	Leftovers func() (string, error)
	// Skip names scenarios (see Scenarios) or variant path elements
	// (VariantIPv6, VariantNodePortAddresses, ...) the backend does not
	// implement, each with the reason: a subtest whose path holds a key is
	// skipped with that reason, even under LBKIT_E2E=1 (a declared gap, not
	// a missing requirement). An unknown key fails the suite.
	Skip map[string]string
	// IgnoreSource turns off the checks of the client address a backend
	// sees: cluster-IP traffic from outside the cluster CIDRs and node-port
	// traffic with externalTrafficPolicy Cluster masqueraded, the client's
	// own address kept otherwise. Only for a backend that proxies
	// connections and so never keeps a client's address.
	IgnoreSource bool
	// Timeout bounds a connection that must succeed; zero means 2s.
	Timeout time.Duration
	// DropTimeout is how long a connection that must be dropped is given
	// to get an answer anyway; zero means 500ms.
	DropTimeout time.Duration
	// Parallel runs the scenarios in parallel, each in its own Network.
	// Only for a Factory and backend that are safe for that.
	Parallel bool
}

// refuseWithin is how soon a rejected connection must be refused: a
// rejection answers in well under a millisecond, a timeout never does.
const refuseWithin = 250 * time.Millisecond

// Scenarios returns the names of Run's scenarios, in the order they run.
func Scenarios() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return names
}

// Run runs the conformance scenarios against backends made by newBackend,
// each as a subtest in a Network of its own, in every variant (see the
// package documentation): subtests IPv4/<scenario> and IPv6/<scenario>
// with the default options, then <family>/<option>/<scenario> for the
// scenarios each option affects (NodePortAddresses,
// OtherFamilyNodePortAddresses, NoClusterCIDRs). Each scenario feeds
// Services and EndpointSlices to a
// servicemap.Tracker for node "node", syncs the backend to the Tracker's
// snapshots (incrementally, with the previous snapshot, unless the
// scenario says otherwise), clears stale UDP flows, and checks what real
// connections from the client namespace reach.
//
// Run needs Linux, root, and the tools "ip" and "nft" plus those in
// opts.Require; without them it skips, or fails under LBKIT_E2E=1 (see
// Require). Each scenario's failure message says what a connection did and
// what was expected; on failure the node's ruleset is logged too.
func Run(t *testing.T, newBackend Factory, opts SuiteOptions) {
	t.Helper()
	Require(t, append([]string{"ip", "nft"}, opts.Require...)...)
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.DropTimeout <= 0 {
		opts.DropTimeout = 500 * time.Millisecond
	}
	known := append(Scenarios(), VariantIPv4, VariantIPv6, VariantNodePortAddresses, VariantOtherFamilyNPA, VariantNoClusterCIDRs, VariantMasqueradeAll)
	for name := range opts.Skip {
		if !slices.Contains(known, name) {
			t.Fatalf("backendtest: SuiteOptions.Skip names %q, neither a scenario nor a variant (have %s)", name, strings.Join(known, ", "))
		}
	}
	// group runs the scenarios that apply in variant v, as subtests of t.
	group := func(t *testing.T, v Variant, applies func(scenario) bool) {
		for _, s := range scenarios {
			if !applies(s) {
				continue
			}
			t.Run(s.name, func(t *testing.T) {
				if opts.Parallel {
					t.Parallel()
				}
				for _, el := range append(v.Elements(), s.name) {
					if reason, ok := opts.Skip[el]; ok {
						t.Skipf("backendtest: skipped by SuiteOptions.Skip[%q]: %s", el, reason)
					}
				}
				e := newEnv(t, newBackend, opts, v)
				s.run(e)
			})
		}
	}
	for _, ipv6 := range []bool{false, true} {
		base := Variant{IPv6: ipv6}
		t.Run(base.String(), func(t *testing.T) {
			if opts.Parallel {
				t.Parallel()
			}
			group(t, base, func(scenario) bool { return true })
			for _, ov := range optionVariants {
				v := base
				ov.set(&v)
				name := v.Elements()[len(v.Elements())-1]
				t.Run(name, func(t *testing.T) {
					if opts.Parallel {
						t.Parallel()
					}
					group(t, v, func(s scenario) bool { return s.options&ov.opt != 0 })
				})
			}
		})
	}
}

// A scenario is one subtest of Run.
type scenario struct {
	name string
	run  func(e *env)
	// options are the backend options this scenario's behaviour depends
	// on: it runs again in the variant that sets each one.
	options option
}

// env is one scenario's world: its Network, the backend under test, the
// Tracker that feeds it and the snapshot it was last synced to.
type env struct {
	t          *testing.T
	n          *Network
	opts       SuiteOptions
	variant    Variant
	newBackend Factory
	backend    backends.Interface
	made       []backends.Interface // every backend made, for teardown
	tracker    *servicemap.Tracker
	prev       *servicemap.Snapshot
	cleaner    *conntrack.Cleaner
	baseline   []string // nodeState before the backend existed
	// warned lists the Tracker warning reasons a hostile scenario expects
	// (see expectWarnings); any other warning fails the sync.
	warned []string
}

// Names of the foreign objects every scenario creates before the backend
// exists; a backend must leave them alone.
const (
	foreignTable   = "other"
	foreignChain   = "c"
	foreignIPTable = "OTHER-CHAIN"
)

func newEnv(t *testing.T, newBackend Factory, opts SuiteOptions, v Variant) *env {
	t.Helper()
	nopts := opts.Network
	nopts.Pods = 3
	nopts.Variant = v
	n := NewNetwork(t, nopts)
	e := &env{
		t:          t,
		n:          n,
		opts:       opts,
		variant:    v,
		newBackend: newBackend,
	}
	e.tracker = e.newTracker()
	e.n.Serve(t, servePort)
	if !opts.DisableConntrack {
		c, err := conntrack.New(conntrack.Options{NodePortAddresses: n.NodePortAddresses()})
		if err != nil {
			t.Fatalf("backendtest: %v", err)
		}
		e.cleaner = c
	}
	// Foreign objects of both families, whichever the backend writes.
	e.exec("nft", fmt.Sprintf("add table ip %[1]s; add chain ip %[1]s %[2]s; add table ip6 %[1]s; add chain ip6 %[1]s %[2]s",
		foreignTable, foreignChain))
	for _, tool := range []string{"iptables", "ip6tables"} {
		if hasTool(tool) {
			e.exec(tool, "-w", "-t", "filter", "-N", foreignIPTable)
		}
	}
	e.addForeignTables() // other families and features (foreign.go)
	if err := e.n.InNode(func() (err error) {
		e.baseline, err = nodeState()
		return err
	}); err != nil {
		t.Fatalf("backendtest: %v", err)
	}

	// Cleanups run last first: the failure dump sees the backend's state,
	// then the backends are cleaned up, then the Network goes.
	t.Cleanup(func() {
		for i := len(e.made) - 1; i >= 0; i-- {
			b := e.made[i]
			if err := e.n.InNode(func() error { return b.Cleanup(context.Background()) }); err != nil {
				t.Errorf("backendtest: teardown: %s Cleanup: %v", b.Name(), err)
			}
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			e.dump()
		}
	})
	e.restart()
	return e
}

// newTracker returns a Tracker for the scenarios' node and the Network's
// family.
func (e *env) newTracker() *servicemap.Tracker {
	return servicemap.NewTracker(servicemap.Options{NodeName: localNode, IPFamily: e.n.IPFamily()})
}

// restart makes a new backend, as a restarted process would, and makes it
// the one under test. The kernel state of the previous one is left as is.
func (e *env) restart() {
	e.t.Helper()
	var b backends.Interface
	if err := e.n.InNode(func() error {
		b = e.newBackend(e.t, e.n)
		return nil
	}); err != nil {
		e.t.Fatalf("backendtest: make backend: %v", err)
	}
	if b == nil {
		e.t.Fatalf("backendtest: Factory returned nil")
	}
	e.backend = b
	e.made = append(e.made, b)
	e.prev = nil
}

// exec runs a command in the node and fails the scenario if it fails.
func (e *env) exec(name string, args ...string) string {
	e.t.Helper()
	out, err := e.n.NodeExec(name, args...)
	if err != nil {
		e.t.Fatalf("backendtest: %v", err)
	}
	return out
}

// dump logs the node's load-balancing state, for a failed scenario.
func (e *env) dump() {
	save, family := "iptables-save", "ipv4"
	if e.variant.IPv6 {
		save, family = "ip6tables-save", "ipv6"
	}
	for _, cmd := range [][]string{
		{"nft", "list", "ruleset"},
		{save},
		{"ipvsadm", "-Ln"},
		{"conntrack", "-L", "-f", family},
	} {
		if !hasTool(cmd[0]) {
			continue
		}
		out, err := e.n.NodeExec(cmd[0], cmd[1:]...)
		if err != nil {
			out += "\n" + err.Error()
		}
		e.t.Logf("backendtest: node state, %s:\n%s", strings.Join(cmd, " "), out)
	}
}

func hasTool(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// --- feeding the backend ---

// apply gives the Tracker new or changed objects: *v1.Service or
// *discoveryv1.EndpointSlice.
func (e *env) apply(objs ...any) {
	e.t.Helper()
	for _, o := range objs {
		switch o := o.(type) {
		case *v1.Service:
			e.tracker.OnServiceUpdate(nil, o)
		case *discoveryv1.EndpointSlice:
			e.tracker.OnEndpointSliceUpdate(nil, o)
		default:
			e.t.Fatalf("backendtest: apply %T", o)
		}
	}
}

// remove deletes objects from the Tracker.
func (e *env) remove(objs ...any) {
	e.t.Helper()
	for _, o := range objs {
		switch o := o.(type) {
		case *v1.Service:
			e.tracker.OnServiceDelete(o)
		case *discoveryv1.EndpointSlice:
			e.tracker.OnEndpointSliceDelete(o)
		default:
			e.t.Fatalf("backendtest: remove %T", o)
		}
	}
}

// sync syncs the backend to the Tracker's current snapshot, incrementally
// from the last one synced (a full sync after a restart), then clears
// stale UDP flows. It fails the scenario when there are Tracker warnings:
// the scenarios' objects are all valid.
func (e *env) sync() *servicemap.Snapshot {
	e.t.Helper()
	return e.syncFrom(e.prev, e.tracker.Snapshot())
}

// fullSync syncs to the Tracker's current snapshot with prev nil.
func (e *env) fullSync() *servicemap.Snapshot {
	e.t.Helper()
	return e.syncFrom(nil, e.tracker.Snapshot())
}

func (e *env) syncFrom(prev, next *servicemap.Snapshot) *servicemap.Snapshot {
	e.t.Helper()
	for _, w := range e.tracker.Warnings() {
		if !slices.Contains(e.warned, w.Reason) {
			e.t.Fatalf("backendtest: tracker warning (a bug in the scenario): %v", w)
		}
	}
	err := e.n.InNode(func() error { return e.backend.Sync(e.t.Context(), prev, next) })
	if err != nil {
		e.t.Fatalf("%s Sync(v%d -> v%d): %v", e.backend.Name(), prev.Version(), next.Version(), err)
	}
	e.prev = next
	if e.cleaner != nil {
		err := e.n.InNode(func() error {
			_, err := e.cleaner.Reconcile(next)
			return err
		})
		if err != nil {
			e.t.Fatalf("backendtest: conntrack cleanup after sync to v%d: %v", next.Version(), err)
		}
	}
	return next
}

// --- checking traffic ---

// tally makes count TCP connections from src to dst, one after the other,
// and counts them by the backend that answered. The first failure fails
// the scenario, so a broken backend costs one timeout, not count.
func (e *env) tally(src netip.Addr, dst netip.AddrPort, count int) map[string]int {
	e.t.Helper()
	got := map[string]int{}
	for i := range count {
		name, err := e.n.DialTCP(e.t.Context(), src, dst, e.opts.Timeout)
		if err != nil {
			e.t.Fatalf("connection %d of %d to %v from %s failed (answers so far %v): %v", i+1, count, dst, source(src), got, err)
		}
		got[name]++
	}
	return got
}

// tallyUDP sends count datagrams to dst, each from a new ephemeral port
// (a new flow), and counts the answers by backend.
func (e *env) tallyUDP(dst netip.AddrPort, count int) map[string]int {
	e.t.Helper()
	got := map[string]int{}
	for i := range count {
		name, err := e.n.DialUDP(e.t.Context(), 0, dst, e.opts.Timeout)
		if err != nil {
			e.t.Fatalf("UDP flow %d of %d to %v failed (answers so far %v): %v", i+1, count, dst, got, err)
		}
		got[name]++
	}
	return got
}

// reach makes one TCP connection that must succeed and returns who answered.
func (e *env) reach(src netip.Addr, dst netip.AddrPort) string {
	e.t.Helper()
	return only(e.t, e.tally(src, dst, 1))
}

// expectDropped asserts that a TCP connection from src to dst times out:
// the packets are dropped, neither answered nor refused.
func (e *env) expectDropped(src netip.Addr, dst netip.AddrPort, why string) {
	e.t.Helper()
	name, err := e.n.DialTCP(e.t.Context(), src, dst, e.opts.DropTimeout)
	if err == nil || !IsTimeout(err) || IsRefused(err) {
		e.t.Fatalf("%s: connection to %v from %s = %q, %v; want it dropped (a timeout)", why, dst, source(src), name, err)
	}
}

// expectRefused asserts that a connection to dst (TCP, or one UDP
// datagram) is refused at once.
func (e *env) expectRefused(proto v1.Protocol, dst netip.AddrPort, why string) {
	e.t.Helper()
	start := time.Now()
	var name string
	var err error
	if proto == v1.ProtocolUDP {
		name, err = e.n.DialUDP(e.t.Context(), 0, dst, e.opts.DropTimeout)
	} else {
		name, err = e.n.DialTCP(e.t.Context(), netip.Addr{}, dst, e.opts.DropTimeout)
	}
	took := time.Since(start)
	if !IsRefused(err) {
		e.t.Fatalf("%s: %s to %v = %q, %v after %v; want it refused", why, proto, dst, name, err, took.Round(time.Millisecond))
	}
	if took > refuseWithin {
		e.t.Fatalf("%s: %s to %v refused after %v; want under %v", why, proto, dst, took.Round(time.Millisecond), refuseWithin)
	}
}

// only returns the one backend in a tally, failing if there are several.
func only(t *testing.T, got map[string]int) string {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("answers %v, want all from one backend", got)
	}
	for name := range got {
		return name
	}
	return ""
}

// expectTally asserts that got has exactly the backends of want (by name),
// each with at least the count want gives it.
func expectTally(t *testing.T, what string, got map[string]int, want map[string]int) {
	t.Helper()
	ok := len(got) == len(want)
	for name, least := range want {
		if got[name] < max(least, 1) {
			ok = false
		}
	}
	if !ok {
		t.Fatalf("%s: answers %v; want exactly the backends of %v, each at least that often", what, got, want)
	}
}

// foreignMissing reports which foreign objects are gone, "" when none is.
func (e *env) foreignMissing() string {
	var missing []string
	for _, family := range []string{"ip", "ip6"} {
		if _, err := e.n.NodeExec("nft", "list", "chain", family, foreignTable, foreignChain); err != nil {
			missing = append(missing, fmt.Sprintf("nft chain %s %s %s (%v)", family, foreignTable, foreignChain, err))
		}
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		if !hasTool(tool) {
			continue
		}
		if _, err := e.n.NodeExec(tool, "-w", "-t", "filter", "-n", "-L", foreignIPTable); err != nil {
			missing = append(missing, fmt.Sprintf("%s chain %s (%v)", tool, foreignIPTable, err))
		}
	}
	return strings.Join(missing, "; ")
}

// leftovers runs SuiteOptions.Leftovers, or by default compares the node's
// objects with the baseline.
func (e *env) leftovers() string {
	e.t.Helper()
	var out string
	err := e.n.InNode(func() error {
		if e.opts.Leftovers != nil {
			var err error
			out, err = e.opts.Leftovers()
			return err
		}
		now, err := nodeState()
		out = stateDiff(e.baseline, now)
		return err
	})
	if err != nil {
		e.t.Fatalf("backendtest: Leftovers: %v", err)
	}
	return strings.TrimSpace(out)
}

// source formats a dial's source address for messages; the zero Addr is
// the kernel's choice.
func source(src netip.Addr) string {
	if !src.IsValid() {
		return "*"
	}
	return src.String()
}
