package main

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/topology"
)

// The explanation of one service: what `lbctl explain` prints, as a table
// or as JSON. Lists are [] when empty, never null.
type explanation struct {
	Service  string        `json:"service"`
	Node     string        `json:"node"`
	Zone     string        `json:"zone"`
	IPFamily string        `json:"ipFamily"`
	Ports    []explainPort `json:"ports"`
	// Skipped says why a service the files hold has no port in the
	// snapshot ("" when it has some).
	Skipped  string   `json:"skipped,omitempty"`
	Warnings []string `json:"warnings"`
}

type explainPort struct {
	Name      string           `json:"name"`
	Protocol  string           `json:"protocol"`
	Frontends explainFrontends `json:"frontends"`
	Policies  explainPolicies  `json:"policies"`
	Topology  explainTopology  `json:"topology"`
	Endpoints []explainEP      `json:"endpoints"`
	Traffic   []explainTraffic `json:"traffic"`
	// Paths are the decisions for one client (--from).
	Paths []explainPath `json:"paths,omitempty"`
	// Kernel holds what the data plane holds for the port (--backend).
	Kernel []string `json:"kernel,omitempty"`
}

type explainFrontends struct {
	ClusterIP       string   `json:"clusterIP"`
	NodePort        uint16   `json:"nodePort"`
	ExternalIPs     []string `json:"externalIPs"`
	LoadBalancerIPs []string `json:"loadBalancerIPs"`
	SourceRanges    []string `json:"loadBalancerSourceRanges"`
}

type explainPolicies struct {
	InternalTrafficPolicy string `json:"internalTrafficPolicy"`
	ExternalTrafficPolicy string `json:"externalTrafficPolicy"`
	SessionAffinity       string `json:"sessionAffinity"`
	AffinitySeconds       int    `json:"sessionAffinityTimeoutSeconds"`
	HealthCheckNodePort   uint16 `json:"healthCheckNodePort"`
}

type explainTopology struct {
	Mode            string `json:"mode"`
	Reason          string `json:"reason"`
	ClusterFallback bool   `json:"clusterTerminatingFallback"`
	LocalFallback   bool   `json:"localTerminatingFallback"`
}

// explainEP is one endpoint of one slice, with what became of it.
type explainEP struct {
	Address    string   `json:"address"`
	Slice      string   `json:"slice"`
	NodeName   string   `json:"nodeName"`
	Zone       string   `json:"zone"`
	Conditions []string `json:"conditions"`
	ZoneHints  []string `json:"zoneHints"`
	NodeHints  []string `json:"nodeHints"`
	// Cluster and Local say whether the Cluster and Local lists use it;
	// Verdict sums it up ("cluster", "local", "cluster, local", "left
	// out", "unused": the port uses no list that could hold it).
	Cluster bool   `json:"cluster"`
	Local   bool   `json:"local"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
}

// explainTraffic is what one kind of traffic meets.
type explainTraffic struct {
	Kind      string   `json:"kind"`
	Verdict   string   `json:"verdict"`
	Endpoints []string `json:"endpoints"`
	Note      string   `json:"note"`
}

// explainService builds the explanation of service name ("ns/name") and,
// when port is not "", only of that port.
func explainService(in *inputs, res *resolved, tr *servicemap.Tracker, name, port string) (*explanation, error) {
	ns, svcName, _ := strings.Cut(name, "/")
	snap := res.snap
	x := &explanation{Service: name, Node: snap.Node().Name, Zone: snap.Node().Zone, IPFamily: string(snap.IPFamily()),
		Ports: []explainPort{}, Warnings: []string{}}
	var svc *v1.Service
	for _, s := range in.Services {
		if s.Namespace == ns && s.Name == svcName {
			svc = s
		}
	}
	if svc == nil {
		return nil, fmt.Errorf("no Service %s in the input", name)
	}
	for _, w := range tr.Warnings() {
		if strings.HasSuffix(w.Object, " "+name) || strings.Contains(w.Object, " "+ns+"/"+svcName+"-") {
			x.Warnings = append(x.Warnings, w.String())
		}
	}
	ports := snap.Service(ns, svcName)
	if len(ports) == 0 {
		x.Skipped = whySkipped(svc, snap.IPFamily())
	}
	var slicesOf []*discoveryv1.EndpointSlice
	for _, es := range in.Slices {
		if es.Namespace == ns && es.Labels[discoveryv1.LabelServiceName] == svcName {
			slicesOf = append(slicesOf, es)
		}
	}
	slices.SortFunc(slicesOf, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	found := port == ""
	for _, p := range ports {
		if port != "" && p.Name.Port != port {
			continue
		}
		found = true
		x.Ports = append(x.Ports, explainOnePort(p, snap.Node(), snap.IPFamily(), slicesOf))
	}
	if !found {
		return nil, fmt.Errorf("Service %s has no port %q in the snapshot", name, port)
	}
	return x, nil
}

// whySkipped says why a Service the input holds programs nothing.
func whySkipped(svc *v1.Service, family v1.IPFamily) string {
	switch {
	case svc.Spec.Type == v1.ServiceTypeExternalName:
		return "type ExternalName: a DNS alias, nothing to program"
	case svc.Spec.ClusterIP == v1.ClusterIPNone:
		return "headless (clusterIP None): no virtual address to program"
	case svc.Labels[servicemap.LabelServiceProxyName] != "":
		return "labelled " + servicemap.LabelServiceProxyName + "=" + svc.Labels[servicemap.LabelServiceProxyName] + ": another proxy's"
	case svc.Labels[servicemap.LabelHeadless] != "":
		return "labelled " + servicemap.LabelHeadless + ": ignored as kube-proxy ignores it"
	case len(svc.Spec.IPFamilies) > 0 && !slices.Contains(svc.Spec.IPFamilies, family):
		return "no cluster IP of family " + string(family)
	}
	return "skipped by validation: see the warnings"
}

func explainOnePort(p *servicemap.ServicePort, node topology.Node, family v1.IPFamily, sl []*discoveryv1.EndpointSlice) explainPort {
	plan := backends.Plan(p)
	ep := explainPort{
		Name:     p.Name.String(),
		Protocol: string(p.Protocol),
		Frontends: explainFrontends{
			ClusterIP:       netip.AddrPortFrom(p.ClusterIP, p.Port).String(),
			NodePort:        p.NodePort,
			ExternalIPs:     orEmpty(stringsOf(p.ExternalIPs)),
			LoadBalancerIPs: orEmpty(stringsOf(p.LoadBalancerIPs)),
			SourceRanges:    orEmpty(stringsOf(p.LoadBalancerSourceRanges)),
		},
		Policies: explainPolicies{
			InternalTrafficPolicy: string(p.InternalTrafficPolicy),
			ExternalTrafficPolicy: string(p.ExternalTrafficPolicy),
			SessionAffinity:       "None",
			AffinitySeconds:       plan.AffinitySeconds,
			HealthCheckNodePort:   p.HealthCheckNodePort,
		},
		Endpoints: []explainEP{},
	}
	if p.Affinity.ClientIP {
		ep.Policies.SessionAffinity = "ClientIP"
	}
	tx := topology.Explain(p.Endpoints, p.Policy(), node)
	mode := tx.Result.Mode
	if mode == "" {
		mode = "none"
	}
	ep.Topology = explainTopology{Mode: mode, Reason: tx.ModeReason, ClusterFallback: tx.ClusterFallback, LocalFallback: tx.LocalFallback}
	verdicts := map[netip.AddrPort]topology.EndpointVerdict{}
	for _, v := range tx.Endpoints {
		verdicts[v.Endpoint.Addr] = v
	}
	ep.Endpoints = explainEndpoints(p, node.Name, family, sl, verdicts)
	ep.Traffic = explainRoutes(&plan)
	return ep
}

// explainEndpoints lists every endpoint of every slice of the service for
// port p, with the verdict on it.
func explainEndpoints(p *servicemap.ServicePort, node string, family v1.IPFamily, sl []*discoveryv1.EndpointSlice, verdicts map[netip.AddrPort]topology.EndpointVerdict) []explainEP {
	key := endpoints.PortKey{Name: p.Name.Port, Protocol: p.Protocol}
	type copyOf struct {
		slice string
		ep    endpoints.Endpoint
	}
	var out []explainEP
	copies := map[netip.AddrPort][]copyOf{}
	for _, es := range sl {
		parsed, warnings := endpoints.ParseSlice(es, family)
		var number uint16
		hasPort := false
		if parsed != nil {
			for _, sp := range parsed.Ports {
				if sp.PortKey == key {
					number, hasPort = sp.Number, true
				}
			}
		}
		for _, raw := range es.Endpoints {
			e := explainEP{Slice: es.Name, Conditions: conditions(raw.Conditions), ZoneHints: []string{}, NodeHints: []string{}, Verdict: "left out"}
			if len(raw.Addresses) > 0 {
				e.Address = raw.Addresses[0]
			}
			if raw.NodeName != nil {
				e.NodeName = *raw.NodeName
			}
			if raw.Zone != nil {
				e.Zone = *raw.Zone
			}
			if raw.Hints != nil {
				for _, z := range raw.Hints.ForZones {
					e.ZoneHints = append(e.ZoneHints, z.Name)
				}
				for _, n := range raw.Hints.ForNodes {
					e.NodeHints = append(e.NodeHints, n.Name)
				}
			}
			addr, ok := endpoints.ParseAddr(e.Address)
			switch {
			case parsed == nil:
				e.Reason = "slice ignored: " + warningFor(warnings, "")
			case ok && addr.Is6() != (family == v1.IPv6Protocol):
				e.Reason = "other address family"
			case !ok || !parsedHas(parsed, addr):
				e.Reason = "skipped by validation: " + warningFor(warnings, e.Address)
			case !hasPort:
				e.Reason = fmt.Sprintf("the slice has no port %s/%s", cmp.Or(key.Name, `""`), key.Protocol)
			default:
				ap := netip.AddrPortFrom(addr, number)
				e.Address = ap.String()
				copies[ap] = append(copies[ap], copyOf{es.Name, endpointOf(parsed, addr, ap, node)})
			}
			out = append(out, e)
		}
	}
	// Of several copies of one address, Merge keeps one; the others are
	// duplicates of it.
	kept := map[netip.AddrPort]string{}
	for ap, cs := range copies {
		win := cs[0]
		for _, c := range cs[1:] {
			if endpoints.Prefer(c.ep, win.ep) {
				win = c
			}
		}
		kept[ap] = win.slice
	}
	seen := map[netip.AddrPort]bool{}
	for i := range out {
		e := &out[i]
		ap, err := netip.ParseAddrPort(e.Address)
		if err != nil || e.Reason != "" {
			continue
		}
		if kept[ap] != e.Slice || seen[ap] {
			e.Reason = "duplicate of the copy in slice " + kept[ap]
			continue
		}
		seen[ap] = true
		v := verdicts[ap]
		e.Cluster, e.Local = v.InCluster, v.InLocal
		var in []string
		if v.InCluster {
			in = append(in, "cluster")
		}
		if v.InLocal {
			in = append(in, "local")
		}
		switch {
		case len(in) > 0:
			e.Verdict = strings.Join(in, ", ")
			if v.LocalReason != "" && !v.InLocal {
				e.Reason = "not local: " + v.LocalReason
			}
		case v.ClusterReason != "":
			e.Reason = v.ClusterReason
		case v.LocalReason != "":
			e.Reason = v.LocalReason
		default:
			e.Verdict = "unused"
		}
	}
	return out
}

func parsedHas(s *endpoints.Slice, a netip.Addr) bool {
	return slices.ContainsFunc(s.Endpoints, func(se endpoints.SliceEndpoint) bool { return se.Addr == a })
}

// endpointOf is one slice's copy of an endpoint, as Merge sees it.
func endpointOf(s *endpoints.Slice, a netip.Addr, ap netip.AddrPort, node string) endpoints.Endpoint {
	for _, se := range s.Endpoints {
		if se.Addr == a {
			return endpoints.Endpoint{Addr: ap, NodeName: se.NodeName, Zone: se.Zone, ZoneHints: se.ZoneHints, NodeHints: se.NodeHints,
				Ready: se.Ready, Serving: se.Serving, Terminating: se.Terminating, Local: node != "" && se.NodeName == node}
		}
	}
	return endpoints.Endpoint{Addr: ap}
}

func warningFor(ws []endpoints.Warning, addr string) string {
	for _, w := range ws {
		if addr == "" || strings.Contains(w.Message, addr) {
			return w.Message
		}
	}
	if len(ws) > 0 {
		return ws[0].Message
	}
	return "not usable"
}

func conditions(c discoveryv1.EndpointConditions) []string {
	var out []string
	if c.Ready == nil || *c.Ready {
		out = append(out, "ready")
	}
	if c.Serving == nil || *c.Serving {
		out = append(out, "serving")
	}
	if c.Terminating != nil && *c.Terminating {
		out = append(out, "terminating")
	}
	if out == nil {
		return []string{"not ready"}
	}
	return out
}

// explainRoutes says what each kind of traffic meets.
func explainRoutes(pl *backends.PortPlan) []explainTraffic {
	route := func(kind string, r backends.Route) explainTraffic {
		t := explainTraffic{Kind: kind, Verdict: r.Verdict.String(), Endpoints: orEmpty(stringsOf(r.Endpoints))}
		switch {
		case r.Verdict == backends.Reject:
			t.Verdict, t.Note = "REJECT", "no usable endpoint anywhere"
		case r.Verdict == backends.Drop:
			t.Verdict, t.Note = "DROP", "Local policy, no endpoint on this node"
		case r.Local:
			t.Note = "Local policy: this node's endpoints"
		}
		return t
	}
	out := []explainTraffic{route("cluster IP", pl.Internal)}
	if pl.Exposed {
		ext := route("external (node port, external and load-balancer IPs)", pl.External)
		if pl.ShortCircuit {
			ext.Note = strings.TrimPrefix(ext.Note+"; pods and the node itself go to the cluster endpoints (short-circuit)", "; ")
		}
		out = append(out, ext)
		if pl.Firewall {
			out = append(out, explainTraffic{Kind: "load-balancer IPs", Verdict: "DROP", Endpoints: []string{},
				Note: "from sources outside loadBalancerSourceRanges"})
		}
	}
	return out
}
