package iptables_test

import (
	"context"
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/backends/iptables/iptablesfake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// The tests in this file drive the backend's full and partial restores
// against iptablesfake, which applies them with iptables-restore's
// semantics, and compare the resulting tables with those a fresh backend
// writes for the same snapshot.

var flavours = []iptables.Flavour{iptables.FlavourLegacy, iptables.FlavourNFT}

func newOnFake(t *testing.T, fl iptables.Flavour) (*iptables.Backend, *iptablesfake.Fake) {
	t.Helper()
	fake := iptablesfake.New(fl)
	// A small batch size makes the nft flavour's full sync take several
	// restores.
	b, err := iptables.New(iptables.Spec{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}, iptables.Options{Exec: fake, Flavour: fl, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	return b, fake
}

// freshSave is what a new backend on empty tables leaves after a full sync
// of snap.
func freshSave(t *testing.T, fl iptables.Flavour, snap *servicemap.Snapshot) string {
	t.Helper()
	b, fake := newOnFake(t, fl)
	if err := b.Sync(context.Background(), nil, snap); err != nil {
		t.Fatalf("fresh full sync: %v", err)
	}
	return fake.Save(false)
}

var ownChain = regexp.MustCompile(`^LBKIT-(SVC|SVL|EXT|FW|SEP)-`)

// chainsOf returns the service port chains whose rules name port
// ("default/web:http") in a save.
func chainsOf(save, port string) []string {
	var out []string
	for line := range strings.Lines(save) {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == "-A" && ownChain.MatchString(f[1]) && strings.Contains(line, port) && !slices.Contains(out, f[1]) {
			out = append(out, f[1])
		}
	}
	slices.Sort(out)
	return out
}

// restores returns the restore inputs among calls.
func restores(calls []iptablesfake.Call) []string {
	var out []string
	for _, c := range calls {
		if strings.HasSuffix(c.Command[0], "-restore") {
			out = append(out, c.Stdin)
		}
	}
	return out
}

// declared returns the chains a restore input declares (and so rewrites).
func declared(input string) []string {
	var out []string
	for line := range strings.Lines(input) {
		if name, ok := strings.CutPrefix(line, ":"); ok {
			out = append(out, strings.Fields(name)[0])
		}
	}
	slices.Sort(out)
	return out
}

func webSlice(eps ...servicemaptest.Endpoint) *discoveryv1.EndpointSlice {
	return servicemaptest.Slice("default", "web", "web-1", []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)}, eps)
}

func threeServices() *servicemap.Tracker {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	for _, s := range []struct{ name, ip, ep string }{{"web", "10.96.0.10", "10.244.1.5"}, {"api", "10.96.0.11", "10.244.1.6"}, {"db", "10.96.0.12", "10.244.1.7"}} {
		tr.OnServiceAdd(oneService(s.name, s.ip))
		tr.OnEndpointSliceAdd(servicemaptest.Slice("default", s.name, s.name+"-1",
			[]discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)},
			[]servicemaptest.Endpoint{servicemaptest.Ready(s.ep, "node-a")}))
	}
	return tr
}

// A full sync leaves the tables as iptables-save shows them: the fixed and
// dispatch chains, each service port's chains, and the jumps from the
// built-in chains; a second full sync of the same snapshot changes nothing.
func TestFakeFullSync(t *testing.T) {
	for _, fl := range flavours {
		t.Run(string(fl), func(t *testing.T) {
			b, fake := newOnFake(t, fl)
			snap := mixedCluster(20).Snapshot()
			ctx := context.Background()
			if err := b.Sync(ctx, nil, snap); err != nil {
				t.Fatal(err)
			}
			save := fake.Save(false)
			for _, want := range []string{
				":LBKIT-CANARY - [0:0]", "-A LBKIT-CANARY -j RETURN",
				`-A PREROUTING -m comment --comment "lbkit service portals" -j LBKIT-SERVICES`,
				`-A INPUT -m conntrack --ctstate NEW -m comment --comment "lbkit load balancer firewall" -j LBKIT-FIREWALL`,
			} {
				if !strings.Contains(save, want) {
					t.Errorf("tables lack %q", want)
				}
			}
			if n := len(chainsOf(save, "ns-0/svc-0:http")); n < 2 {
				t.Errorf("ns-0/svc-0:http has %d chains, want its SVC and SEP chains at least:\n%s", n, save)
			}
			if err := b.Sync(ctx, nil, snap); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(save, fake.Save(false)); diff != "" {
				t.Errorf("a second full sync changed the tables (-first +second):\n%s", diff)
			}
		})
	}
}

// An incremental sync that gives one service an endpoint more rewrites
// only that service's chains, and leaves the tables as a fresh full sync
// of the same snapshot would.
func TestFakePartialSyncTouchesOneService(t *testing.T) {
	for _, fl := range flavours {
		t.Run(string(fl), func(t *testing.T) {
			b, fake := newOnFake(t, fl)
			tr := threeServices()
			ctx := context.Background()
			s1 := tr.Snapshot()
			if err := b.Sync(ctx, nil, s1); err != nil {
				t.Fatal(err)
			}
			before := fake.Save(false)
			fake.TakeCalls()

			tr.OnEndpointSliceUpdate(nil, webSlice(servicemaptest.Ready("10.244.1.5", "node-a"), servicemaptest.Ready("10.244.2.5", "node-b")))
			s2 := tr.Snapshot()
			if err := b.Sync(ctx, s1, s2); err != nil {
				t.Fatal(err)
			}
			after := fake.Save(false)
			in := restores(fake.TakeCalls())
			if len(in) != 1 {
				t.Fatalf("%d restores, want 1", len(in))
			}
			web := chainsOf(after, "default/web:http")
			if diff := cmp.Diff(web, declared(in[0])); diff != "" {
				t.Errorf("chains the partial restore declared (-web's chains +declared):\n%s", diff)
			}
			for _, other := range []string{"default/api:http", "default/db:http"} {
				if strings.Contains(in[0], other) {
					t.Errorf("partial restore mentions %s:\n%s", other, in[0])
				}
				if diff := cmp.Diff(chainsOf(before, other), chainsOf(after, other)); diff != "" {
					t.Errorf("%s's chains changed (-before +after):\n%s", other, diff)
				}
			}
			if diff := cmp.Diff(freshSave(t, fl, s2), after); diff != "" {
				t.Errorf("tables after the partial sync differ from a fresh full sync (-fresh +partial):\n%s", diff)
			}
		})
	}
}

// Removing a service deletes its chains (declared, so emptied, then -X)
// and its dispatch lines; an endpoint that goes takes its SEP chain with
// it. Both leave the tables as a fresh full sync.
func TestFakePartialSyncDeletesChains(t *testing.T) {
	for _, fl := range flavours {
		t.Run(string(fl), func(t *testing.T) {
			b, fake := newOnFake(t, fl)
			tr := threeServices()
			tr.OnEndpointSliceUpdate(nil, webSlice(servicemaptest.Ready("10.244.1.5", "node-a"), servicemaptest.Ready("10.244.2.5", "node-b")))
			ctx := context.Background()
			prev := tr.Snapshot()
			if err := b.Sync(ctx, nil, prev); err != nil {
				t.Fatal(err)
			}
			web := chainsOf(fake.Save(false), "default/web:http")
			steps := []struct {
				name   string
				change func()
				gone   int // chains of web that must go
			}{
				{"endpoint", func() { tr.OnEndpointSliceUpdate(nil, webSlice(servicemaptest.Ready("10.244.1.5", "node-a"))) }, 1},
				{"service", func() { tr.OnServiceDelete(oneService("web", "10.96.0.10")) }, len(web) - 1},
			}
			for _, step := range steps {
				step.change()
				next := tr.Snapshot()
				fake.TakeCalls()
				if err := b.Sync(ctx, prev, next); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				prev = next
				save := fake.Save(false)
				in := restores(fake.TakeCalls())
				var left []string
				for _, c := range web {
					if strings.Contains(save, ":"+c+" ") {
						left = append(left, c)
					} else if len(in) != 1 || !strings.Contains(in[0], "-X "+c+"\n") {
						t.Errorf("%s: %s went without a -X in the partial restore", step.name, c)
					}
				}
				gone := len(web) - len(left)
				web = left
				if gone != step.gone {
					t.Errorf("%s: %d of web's chains gone, want %d", step.name, gone, step.gone)
				}
				if diff := cmp.Diff(freshSave(t, fl, next), save); diff != "" {
					t.Errorf("%s: tables differ from a fresh full sync (-fresh +partial):\n%s", step.name, diff)
				}
			}
			if strings.Contains(fake.Save(false), "default/web") {
				t.Errorf("web's rules left after it went:\n%s", fake.Save(false))
			}
		})
	}
}

// A restore iptables-restore refuses changes nothing; the sync fails with
// ErrApply, and the next one, even given the previous snapshot, is a full
// sync that reads the tables back and converges.
func TestFakeFailedRestoreThenFullSync(t *testing.T) {
	for _, fl := range flavours {
		t.Run(string(fl), func(t *testing.T) {
			b, fake := newOnFake(t, fl)
			tr := threeServices()
			tr.OnEndpointSliceUpdate(nil, webSlice(servicemaptest.Ready("10.244.1.5", "node-a"), servicemaptest.Ready("10.244.2.5", "node-b")))
			ctx := context.Background()
			s1 := tr.Snapshot()
			if err := b.Sync(ctx, nil, s1); err != nil {
				t.Fatal(err)
			}
			// Someone else jumps to the SEP chain of the endpoint that is
			// about to go: the kernel refuses to delete a chain in use.
			seps := chainsOf(fake.Save(false), "10.244.2.5")
			sep := ""
			for _, c := range seps {
				if strings.HasPrefix(c, "LBKIT-SEP-") {
					sep = c
				}
			}
			if sep == "" {
				t.Fatalf("no SEP chain for 10.244.2.5 among %q", seps)
			}
			foreign := []string{"-t", "nat", "-A", "OUTPUT", "-d", "192.0.2.1/32", "-j", sep}
			if _, err := fake.Run(ctx, "iptables", foreign, nil); err != nil {
				t.Fatal(err)
			}
			before := fake.Save(false)

			tr.OnEndpointSliceUpdate(nil, webSlice(servicemaptest.Ready("10.244.1.5", "node-a")))
			s2 := tr.Snapshot()
			err := b.Sync(ctx, s1, s2)
			var lineErr *iptablesfake.LineError
			if !errors.Is(err, backends.ErrApply) || !errors.As(err, &lineErr) || !strings.Contains(lineErr.Reason, sep) {
				t.Fatalf("Sync = %v, want ErrApply wrapping a LineError about %s", err, sep)
			}
			if diff := cmp.Diff(before, fake.Save(false)); diff != "" {
				t.Errorf("the refused restore changed the tables (-before +after):\n%s", diff)
			}

			// The other program goes away; the backend resyncs in full.
			foreign[2] = "-D"
			if _, err := fake.Run(ctx, "iptables", foreign, nil); err != nil {
				t.Fatal(err)
			}
			fake.TakeCalls()
			if err := b.Sync(ctx, s1, s2); err != nil {
				t.Fatal(err)
			}
			read := false
			for _, c := range fake.TakeCalls() {
				read = read || strings.HasSuffix(c.Command[0], "-save") || c.Command[0] == "nft"
			}
			if !read {
				t.Errorf("the sync after a failure did not read the tables back (not a full sync)")
			}
			if diff := cmp.Diff(freshSave(t, fl, s2), fake.Save(false)); diff != "" {
				t.Errorf("tables after the resync differ from a fresh full sync (-fresh +resync):\n%s", diff)
			}

			// An injected failure of the next restore: the same story.
			fake.FailNext("iptables-"+string(fl)+"-restore", nil)
			tr.OnServiceDelete(oneService("api", "10.96.0.11"))
			s3 := tr.Snapshot()
			if err := b.Sync(ctx, s2, s3); !errors.Is(err, iptablesfake.ErrInjected) {
				t.Fatalf("Sync = %v, want the injected failure", err)
			}
			if err := b.Sync(ctx, s2, s3); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(freshSave(t, fl, s3), fake.Save(false)); diff != "" {
				t.Errorf("tables after the second resync differ from a fresh full sync (-fresh +resync):\n%s", diff)
			}
		})
	}
}

// Many random changes, each synced incrementally, leave the tables as a
// full sync of the last snapshot does.
func TestFakeIncrementalConverges(t *testing.T) {
	for _, fl := range flavours {
		t.Run(string(fl), func(t *testing.T) {
			b, fake := newOnFake(t, fl)
			tr := mixedCluster(30)
			ctx := context.Background()
			prev := tr.Snapshot()
			if err := b.Sync(ctx, nil, prev); err != nil {
				t.Fatal(err)
			}
			for i, n := range []int{3, 7, 11, 19, 29} {
				// Services come and go.
				name := "svc-" + strconv.Itoa(n)
				svc := servicemaptest.Service("ns-"+strconv.Itoa(n%7), name, "10.96.0."+strconv.Itoa(n+1), []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)})
				if i%2 == 0 {
					tr.OnServiceDelete(svc)
				} else {
					tr.OnServiceUpdate(nil, svc)
				}
				next := tr.Snapshot()
				if err := b.Sync(ctx, prev, next); err != nil {
					t.Fatal(err)
				}
				prev = next
			}
			if diff := cmp.Diff(freshSave(t, fl, prev), fake.Save(false)); diff != "" {
				t.Errorf("tables differ from a fresh full sync (-fresh +incremental):\n%s", diff)
			}
		})
	}
}

// A dispatch change in a large ruleset (a service losing its last
// endpoint, a service added, one removed) edits the dispatch chains in
// place: the restore input declares none of them (declaring flushes) and
// holds only the changed service's -D and -I lines, and the tables end up
// as a fresh full sync leaves them. Rewriting 44,000 dispatch lines for one
// service took iptables-nft-restore minutes.
func TestFakeDispatchEdits(t *testing.T) {
	for _, fl := range flavours {
		t.Run(string(fl), func(t *testing.T) {
			b, fake := newOnFake(t, fl)
			tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
			svcs, slices := servicemaptest.Cluster(200, 1)
			for i := range svcs {
				tr.OnServiceAdd(svcs[i])
				tr.OnEndpointSliceAdd(slices[i])
			}
			prev := tr.Snapshot()
			ctx := context.Background()
			if err := b.Sync(ctx, nil, prev); err != nil {
				t.Fatal(err)
			}
			gone := slices[100].DeepCopy()
			gone.Endpoints[0].Conditions.Ready = servicemaptest.Ptr(false)
			steps := []struct {
				name  string
				apply func()
				port  string
			}{
				{"last endpoint not ready", func() { tr.OnEndpointSliceUpdate(nil, gone) }, gone.Labels[discoveryv1.LabelServiceName]},
				{"ready again", func() { tr.OnEndpointSliceUpdate(nil, slices[100]) }, gone.Labels[discoveryv1.LabelServiceName]},
				{"service removed", func() { tr.OnServiceDelete(svcs[7]) }, svcs[7].Name},
				{"service back", func() { tr.OnServiceAdd(svcs[7]) }, svcs[7].Name},
			}
			for _, step := range steps {
				step.apply()
				next := tr.Snapshot()
				fake.TakeCalls()
				if err := b.Sync(ctx, prev, next); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				prev = next
				in := restores(fake.TakeCalls())
				if len(in) != 1 {
					t.Fatalf("%s: %d restores, want 1", step.name, len(in))
				}
				for line := range strings.Lines(in[0]) {
					if strings.HasPrefix(line, ":LBKIT-SERVICES ") || strings.HasPrefix(line, ":LBKIT-EXTERNAL-SERVICES ") {
						t.Errorf("%s: the input declares (so flushes) a dispatch chain: %s", step.name, line)
					}
					if (strings.HasPrefix(line, "-I LBKIT-") || strings.HasPrefix(line, "-D LBKIT-")) && !strings.Contains(line, "/"+step.port+":") {
						t.Errorf("%s: an edit of another service: %s", step.name, line)
					}
				}
				if !strings.Contains(in[0], "-I LBKIT-") && !strings.Contains(in[0], "-D LBKIT-") {
					t.Errorf("%s: no dispatch edit in the input:\n%s", step.name, in[0])
				}
				if diff := cmp.Diff(freshSave(t, fl, next), fake.Save(false)); diff != "" {
					t.Errorf("%s: tables differ from a fresh full sync (-fresh +edited):\n%s", step.name, diff)
				}
			}
		})
	}
}
