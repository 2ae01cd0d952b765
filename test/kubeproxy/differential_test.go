package kubeproxy_test

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/proxy"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
)

// portView is what both sides say about one service port on thisNode:
// the Service's fields, every endpoint with its conditions, and the
// endpoints each traffic policy uses. Lists are sorted text.
type portView struct {
	ClusterIP       string
	NodePort        int
	ExternalIPs     []string
	LoadBalancerIPs []string
	SourceRanges    []string
	AffinitySeconds int
	InternalLocal   bool
	ExternalLocal   bool
	HealthCheckPort int
	Endpoints       []string // "addr ready serving terminating local"
	Cluster, Local  []string
	HasEndpoints    bool
	// Verdicts of cluster-IP and external traffic, as kube-proxy's
	// proxiers derive them (see kubeProxyVerdicts).
	Internal, External string
}

// kubeProxyView runs kube-proxy's own change trackers and
// CategorizeEndpoints (pkg/proxy, v1.37.2) through the clusters of history
// in turn, as informer events, and returns its view of the last.
func kubeProxyView(history []cluster, fam v1.IPFamily) map[string]portView {
	sct := proxy.NewServiceChangeTracker(fam, nil, nil)
	ect := proxy.NewEndpointsChangeTracker(fam, thisNode, nil, nil)
	svcs, eps := proxy.ServicePortMap{}, proxy.EndpointsMap{}
	var prev cluster
	for _, c := range history {
		events(prev, c,
			func(old, cur *v1.Service) { sct.Update(old, cur) },
			func(old, cur *discoveryv1.EndpointSlice) {
				if cur == nil {
					ect.EndpointSliceUpdate(old, true)
				} else {
					ect.EndpointSliceUpdate(cur, false)
				}
			})
		svcs.Update(sct)
		eps.Update(ect)
		prev = c
	}
	c := prev

	out := map[string]portView{}
	for name, sp := range svcs {
		list := eps[name]
		labels := map[string]string{}
		if c.zone != "" {
			labels[v1.LabelTopologyZone] = c.zone
		}
		cluster, local, _, has := proxy.CategorizeEndpoints(list, sp, thisNode, labels)
		v := portView{
			ClusterIP:       sp.ClusterIP().String(),
			NodePort:        sp.NodePort(),
			ExternalIPs:     ipStrings(sp.ExternalIPs()),
			LoadBalancerIPs: ipStrings(sp.LoadBalancerVIPs()),
			AffinitySeconds: sp.StickyMaxAgeSeconds(),
			InternalLocal:   sp.InternalPolicyLocal(),
			ExternalLocal:   sp.ExternalPolicyLocal(),
			HealthCheckPort: sp.HealthCheckNodePort(),
			Cluster:         epStrings(cluster),
			Local:           epStrings(local),
			HasEndpoints:    has,
		}
		for _, r := range sp.LoadBalancerSourceRanges() {
			v.SourceRanges = append(v.SourceRanges, r.String())
		}
		// A range listed twice admits what it admits once (lbkit keeps
		// one copy).
		slices.Sort(v.SourceRanges)
		v.SourceRanges = slices.Compact(v.SourceRanges)
		for _, ep := range list {
			v.Endpoints = append(v.Endpoints, fmt.Sprintf("%s %v %v %v %v", ep.String(), ep.IsReady(), ep.IsServing(), ep.IsTerminating(), ep.IsLocal()))
		}
		slices.Sort(v.Endpoints)
		v.Internal, v.External = kubeProxyVerdicts(sp, local, has)
		out[portKey(name.Namespace, name.Name, name.Port, name.Protocol)] = v
	}
	return out
}

// kubeProxyVerdicts restates the lines of kube-proxy's syncProxyRules
// (nftables proxier.go, hasInternalEndpoints and hasExternalEndpoints; the
// iptables proxier has the same) that turn CategorizeEndpoints' answer into
// what cluster-IP and external traffic meet: forwarded, rejected (no
// endpoint anywhere) or dropped (endpoints, but none for this policy).
func kubeProxyVerdicts(sp proxy.ServicePort, local []proxy.Endpoint, has bool) (internal, external string) {
	verdict := func(usable bool) string {
		switch {
		case usable:
			return "forward"
		case has:
			return "drop"
		}
		return "reject"
	}
	hasInternal := has
	if sp.InternalPolicyLocal() && len(local) == 0 {
		hasInternal = false
	}
	hasExternal := has
	if sp.ExternalPolicyLocal() && len(local) == 0 {
		hasExternal = false
	}
	if !sp.ExternallyAccessible() {
		return verdict(hasInternal), ""
	}
	return verdict(hasInternal), verdict(hasExternal)
}

// lbkitView resolves the clusters of history in turn with lbkit's Tracker
// (a snapshot after each, so later ones are incremental) and PortPlan, and
// returns its view of the last.
func lbkitView(history []cluster, fam v1.IPFamily) (map[string]portView, []servicemap.Warning) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: thisNode, IPFamily: fam})
	var prev cluster
	for i, c := range history {
		node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: thisNode}}
		if c.zone != "" {
			node.Labels = map[string]string{v1.LabelTopologyZone: c.zone}
		}
		if i == 0 {
			tr.OnNodeAdd(node)
		} else {
			tr.OnNodeUpdate(nil, node)
		}
		events(prev, c,
			func(old, cur *v1.Service) {
				switch {
				case cur == nil:
					tr.OnServiceDelete(old)
				default:
					tr.OnServiceUpdate(old, cur)
				}
			},
			func(old, cur *discoveryv1.EndpointSlice) {
				switch {
				case cur == nil:
					tr.OnEndpointSliceDelete(old)
				case old == nil:
					tr.OnEndpointSliceAdd(cur)
				default:
					tr.OnEndpointSliceUpdate(old, cur)
				}
			})
		tr.Snapshot()
		prev = c
	}
	out := map[string]portView{}
	for _, p := range tr.Snapshot().Ports() {
		pl := backends.Plan(p)
		v := portView{
			ClusterIP:       p.ClusterIP.String(),
			NodePort:        int(p.NodePort),
			ExternalIPs:     addrStrings(p.ExternalIPs),
			LoadBalancerIPs: addrStrings(p.LoadBalancerIPs),
			SourceRanges:    addrStrings(p.LoadBalancerSourceRanges),
			AffinitySeconds: pl.AffinitySeconds,
			InternalLocal:   p.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal,
			ExternalLocal:   p.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal,
			HealthCheckPort: int(p.HealthCheckNodePort),
			Cluster:         lbkitEPStrings(pl.Cluster),
			Local:           lbkitEPStrings(pl.Local),
			HasEndpoints:    pl.HasEndpoints(),
			Internal:        pl.Internal.Verdict.String(),
		}
		if pl.Exposed {
			v.External = pl.External.Verdict.String()
		}
		for _, ep := range p.Endpoints {
			v.Endpoints = append(v.Endpoints, fmt.Sprintf("%s %v %v %v %v", ep.Addr, ep.Ready, ep.Serving, ep.Terminating, ep.Local))
		}
		slices.Sort(v.Endpoints)
		out[portKey(p.Name.Namespace, p.Name.Name, p.Name.Port, p.Protocol)] = v
	}
	return out, tr.Warnings()
}

func portKey(ns, name, port string, proto v1.Protocol) string {
	return types.NamespacedName{Namespace: ns, Name: name}.String() + ":" + port + "/" + string(proto)
}

func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return out
}

func addrStrings[T interface{ String() string }](list []T) []string {
	var out []string
	for _, a := range list {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

func epStrings(eps []proxy.Endpoint) []string {
	var out []string
	for _, ep := range eps {
		out = append(out, ep.String())
	}
	slices.Sort(out)
	return out
}

func lbkitEPStrings(eps []endpoints.Endpoint) []string {
	var out []string
	for _, ep := range eps {
		out = append(out, netip.AddrPortFrom(ep.Addr.Addr(), ep.Addr.Port()).String())
	}
	slices.Sort(out)
	return out
}

// quietKlog silences kube-proxy's logs of the invalid slice ports the
// clusters hold on purpose.
func quietKlog() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}

// events calls svc and slice with the informer events that turn cluster
// prev into cur: (nil, new) for an addition, (old, new) for an update,
// (old, nil) for a deletion.
func events(prev, cur cluster, svc func(old, cur *v1.Service), slice func(old, cur *discoveryv1.EndpointSlice)) {
	diff(prev.services, cur.services, svc)
	diff(prev.slices, cur.slices, slice)
}

func diff[T interface{ GetName() string }](prev, cur []T, f func(old, cur T)) {
	var zero T
	old := map[string]T{}
	for _, o := range prev {
		old[o.GetName()] = o
	}
	for _, o := range cur {
		f(old[o.GetName()], o)
		delete(old, o.GetName())
	}
	for _, o := range prev {
		if _, gone := old[o.GetName()]; gone {
			f(o, zero)
		}
	}
}

// compare reports every difference between the two views of the last
// cluster of history, and returns kube-proxy's.
func compare(t *testing.T, seed uint64, history ...cluster) []portView {
	t.Helper()
	var views []portView
	for _, fam := range []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol} {
		want := kubeProxyView(history, fam)
		for _, v := range want {
			views = append(views, v)
		}
		got, warnings := lbkitView(history, fam)
		if diff := cmp.Diff(want, got); diff != "" {
			var w []string
			for _, x := range warnings {
				w = append(w, x.String())
			}
			var input []string
			for i, h := range history {
				input = append(input, fmt.Sprintf("state %d of %d:\n%s", i+1, len(history), describe(h)))
			}
			t.Errorf("seed %d, %s: kube-proxy (-) and lbkit (+) differ:\n%s\ninput:\n%s\nlbkit's warnings:\n%s",
				seed, fam, diff, strings.Join(input, ""), strings.Join(w, "\n"))
		}
	}
	return views
}

// cases names the corner cases a port's view shows, so that the test can
// require the random clusters to reach every one of them.
func cases(v portView) []string {
	var out []string
	add := func(ok bool, name string) {
		if ok {
			out = append(out, name)
		}
	}
	add(v.Internal == "drop", "cluster IP dropped (Local policy, no local endpoint)")
	add(v.Internal == "reject", "cluster IP rejected (no endpoint)")
	add(v.External == "drop", "external traffic dropped")
	add(v.External == "forward" && v.ExternalLocal, "external traffic to local endpoints")
	add(v.InternalLocal && v.Internal == "forward", "cluster IP to local endpoints")
	ready, terminating := 0, 0
	for _, e := range v.Endpoints {
		f := strings.Fields(e)
		if f[1] == "true" {
			ready++
		}
		if f[2] == "true" && f[3] == "true" {
			terminating++
		}
	}
	add(len(v.Cluster) > 0 && len(v.Cluster) < ready, "topology narrows the cluster endpoints")
	add(ready == 0 && len(v.Cluster) > 0, "serving terminating endpoints used")
	add(len(v.SourceRanges) > 0 && len(v.LoadBalancerIPs) > 0, "firewalled load-balancer IP")
	add(v.AffinitySeconds > 0, "ClientIP affinity")
	add(v.HealthCheckPort > 0, "health check node port")
	return out
}

// TestAgainstKubeProxy resolves random clusters with kube-proxy's code and
// with lbkit's, and requires the same answer for every service port. Most
// seeds are a history of clusters fed in as informer events, so that
// updates and deletions go through both sides' incremental paths.
func TestAgainstKubeProxy(t *testing.T) {
	quietKlog()
	n := 3000
	if testing.Short() {
		n = 300
	}
	seen := map[string]int{}
	ports := 0
	for seed := range uint64(n) {
		g := &gen{r: rand.New(rand.NewPCG(seed, 0x1b17))}
		for _, v := range compare(t, seed, g.history()...) {
			ports++
			for _, c := range cases(v) {
				seen[c]++
			}
		}
		if t.Failed() {
			return // one seed's report is enough to read
		}
	}
	t.Logf("%d histories, %d service ports agree; corner cases reached: %v", n, ports, seen)
	for _, name := range []string{
		"cluster IP dropped (Local policy, no local endpoint)", "cluster IP rejected (no endpoint)",
		"external traffic dropped", "external traffic to local endpoints", "cluster IP to local endpoints",
		"topology narrows the cluster endpoints", "serving terminating endpoints used",
		"firewalled load-balancer IP", "ClientIP affinity", "health check node port",
	} {
		if seen[name] < n/100 {
			t.Errorf("the random clusters reached %q %d times, want at least %d", name, seen[name], n/100)
		}
	}
}

// FuzzAgainstKubeProxy is TestAgainstKubeProxy with the fuzzer choosing the
// seeds: go test -fuzz FuzzAgainstKubeProxy ./test/kubeproxy (from its
// module).
func FuzzAgainstKubeProxy(f *testing.F) {
	for _, s := range []uint64{0, 1, 42} {
		f.Add(s, uint64(0x1b17))
	}
	quietKlog()
	f.Fuzz(func(t *testing.T, a, b uint64) {
		g := &gen{r: rand.New(rand.NewPCG(a, b))}
		compare(t, a, g.history()...)
	})
}
