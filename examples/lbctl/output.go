package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/topology"
)

// The JSON document scripts rely on. Lists are [] when empty, never null,
// except clusterEndpoints and localEndpoints: null there means the port does
// not use that policy at all.
type jsonOutput struct {
	Version  uint64        `json:"version"`
	Node     string        `json:"node"`
	Zone     string        `json:"zone"`
	IPFamily string        `json:"ipFamily"`
	Services []jsonService `json:"services"`
	Warnings []string      `json:"warnings"`
}

type jsonService struct {
	Name                          string         `json:"name"`
	Protocol                      string         `json:"protocol"`
	ClusterIP                     string         `json:"clusterIP"`
	Port                          uint16         `json:"port"`
	NodePort                      uint16         `json:"nodePort"`
	ExternalIPs                   []string       `json:"externalIPs"`
	LoadBalancerIPs               []string       `json:"loadBalancerIPs"`
	LoadBalancerSourceRanges      []string       `json:"loadBalancerSourceRanges"`
	SessionAffinity               string         `json:"sessionAffinity"`
	SessionAffinityTimeoutSeconds int            `json:"sessionAffinityTimeoutSeconds"`
	InternalTrafficPolicy         string         `json:"internalTrafficPolicy"`
	ExternalTrafficPolicy         string         `json:"externalTrafficPolicy"`
	HealthCheckNodePort           uint16         `json:"healthCheckNodePort"`
	Endpoints                     []jsonEndpoint `json:"endpoints"`
	ClusterEndpoints              []string       `json:"clusterEndpoints"`
	LocalEndpoints                []string       `json:"localEndpoints"`
	HasEndpoints                  bool           `json:"hasEndpoints"`
	// TopologyMode is the topology mode applied to the cluster endpoints
	// ("" when hints are not used).
	TopologyMode string `json:"topologyMode"`
	// LeftOut are the endpoints that no list of the port uses, each with
	// the reason.
	LeftOut []jsonLeftOut `json:"leftOut"`

	note string // the table's NOTE column
}

type jsonLeftOut struct {
	Address string `json:"address"`
	Reason  string `json:"reason"`
}

type jsonEndpoint struct {
	Address     string   `json:"address"`
	Ready       bool     `json:"ready"`
	Serving     bool     `json:"serving"`
	Terminating bool     `json:"terminating"`
	Local       bool     `json:"local"`
	NodeName    string   `json:"nodeName"`
	ZoneHints   []string `json:"zoneHints"`
	NodeHints   []string `json:"nodeHints"`
}

// stringsOf formats values and sorts the text, so that every list in the
// output is in the same (textual) order kube-proxy sorts endpoints in.
func stringsOf[T interface{ String() string }](list []T) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		out = append(out, v.String())
	}
	slices.Sort(out)
	return out
}

// nullableAddrs keeps the nil / empty distinction of topology results.
func nullableAddrs(eps []endpoints.Endpoint) []string {
	if eps == nil {
		return nil
	}
	return stringsOf(eps)
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func toJSON(res *resolved) jsonOutput {
	snap := res.snap
	out := jsonOutput{
		Version:  snap.Version(),
		Node:     snap.Node().Name,
		Zone:     snap.Node().Zone,
		IPFamily: string(snap.IPFamily()),
		Services: []jsonService{},
		Warnings: orEmpty(res.warnings),
	}
	for _, p := range snap.Ports() {
		affinity := "None"
		if p.Affinity.ClientIP {
			affinity = "ClientIP"
		}
		s := jsonService{
			Name:                          p.Name.String(),
			Protocol:                      string(p.Protocol),
			ClusterIP:                     p.ClusterIP.String(),
			Port:                          p.Port,
			NodePort:                      p.NodePort,
			ExternalIPs:                   stringsOf(p.ExternalIPs),
			LoadBalancerIPs:               stringsOf(p.LoadBalancerIPs),
			LoadBalancerSourceRanges:      stringsOf(p.LoadBalancerSourceRanges),
			SessionAffinity:               affinity,
			SessionAffinityTimeoutSeconds: p.Affinity.TimeoutSeconds(),
			InternalTrafficPolicy:         string(p.InternalTrafficPolicy),
			ExternalTrafficPolicy:         string(p.ExternalTrafficPolicy),
			HealthCheckNodePort:           p.HealthCheckNodePort,
			Endpoints:                     []jsonEndpoint{},
			ClusterEndpoints:              nullableAddrs(p.Topology.Cluster),
			LocalEndpoints:                nullableAddrs(p.Topology.Local),
			HasEndpoints:                  p.Topology.HasEndpoints,
			TopologyMode:                  p.Topology.Mode,
			LeftOut:                       []jsonLeftOut{},
		}
		for _, v := range topology.Explain(p.Endpoints, p.Policy(), snap.Node()).Endpoints {
			if v.InCluster || v.InLocal {
				continue
			}
			s.LeftOut = append(s.LeftOut, jsonLeftOut{Address: v.Endpoint.String(), Reason: cmp.Or(v.ClusterReason, v.LocalReason)})
		}
		slices.SortFunc(s.LeftOut, func(a, b jsonLeftOut) int { return strings.Compare(a.Address, b.Address) })
		for _, ep := range p.Endpoints {
			s.Endpoints = append(s.Endpoints, jsonEndpoint{
				Address: ep.String(), Ready: ep.Ready, Serving: ep.Serving, Terminating: ep.Terminating,
				Local: ep.Local, NodeName: ep.NodeName,
				ZoneHints: orEmpty(slices.Clone(ep.ZoneHints)), NodeHints: orEmpty(slices.Clone(ep.NodeHints)),
			})
		}
		slices.SortFunc(s.Endpoints, func(a, b jsonEndpoint) int { return strings.Compare(a.Address, b.Address) })
		s.note = note(backends.Plan(p), s)
		out.Services = append(out.Services, s)
	}
	slices.SortStableFunc(out.Services, func(a, b jsonService) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Protocol, b.Protocol)
	})
	return out
}

func writeJSON(w io.Writer, res *resolved) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(toJSON(res))
}

// writeTable prints one line per service port: where it listens, which
// endpoints it uses, and what happens to traffic it cannot serve.
func writeTable(w io.Writer, res *resolved) {
	snap := res.snap
	node := snap.Node()
	fmt.Fprintf(w, "node %q", node.Name)
	if node.Name == "" {
		fmt.Fprint(w, " (none: no endpoint is local)")
	}
	if node.Zone != "" {
		fmt.Fprintf(w, " zone %q", node.Zone)
	}
	fmt.Fprintf(w, ", %s, snapshot version %d, %d service ports\n\n", snap.IPFamily(), snap.Version(), snap.Len())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tPROTO\tCLUSTER-IP:PORT\tEXTERNAL\tPOLICY\tCLUSTER ENDPOINTS\tLOCAL ENDPOINTS\tNOTE")
	for _, s := range toJSON(res).Services {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			s.Name, s.Protocol, netip.AddrPortFrom(netip.MustParseAddr(s.ClusterIP), s.Port),
			external(s), policy(s), list(s.ClusterEndpoints), list(s.LocalEndpoints), s.note)
	}
	tw.Flush()
	if len(res.warnings) > 0 {
		fmt.Fprintf(w, "\nwarnings:\n")
		for _, msg := range res.warnings {
			fmt.Fprintf(w, "  %s\n", msg)
		}
	}
}

func external(s jsonService) string {
	var parts []string
	if s.NodePort != 0 {
		parts = append(parts, fmt.Sprintf("nodePort %d", s.NodePort))
	}
	parts = append(parts, s.ExternalIPs...)
	for _, ip := range s.LoadBalancerIPs {
		parts = append(parts, "lb "+ip)
	}
	if len(s.LoadBalancerSourceRanges) > 0 {
		parts = append(parts, "from "+strings.Join(s.LoadBalancerSourceRanges, ","))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func policy(s jsonService) string {
	p := "int=" + s.InternalTrafficPolicy + " ext=" + s.ExternalTrafficPolicy
	if s.SessionAffinity != "None" {
		p += fmt.Sprintf(" affinity=%ds", s.SessionAffinityTimeoutSeconds)
	}
	return p
}

func list(addrs []string) string {
	switch {
	case addrs == nil:
		return "(unused)"
	case len(addrs) == 0:
		return "(none)"
	}
	return strings.Join(addrs, ",")
}

// note says what the data plane does with traffic it cannot serve (from
// the port's backends.PortPlan, as every backend decides it), or how
// topology narrowed the endpoints.
func note(pl backends.PortPlan, s jsonService) string {
	switch {
	case !pl.HasEndpoints():
		return "REJECT: no endpoints"
	case pl.Internal.Verdict == backends.Drop && !pl.Internal.Local:
		return "DROP: no usable endpoint here"
	case pl.Internal.Verdict == backends.Drop, pl.Exposed && pl.External.Verdict == backends.Drop:
		return "DROP local-policy traffic: no local endpoint"
	}
	for _, ep := range s.Endpoints {
		if ep.Terminating && slices.Contains(s.ClusterEndpoints, ep.Address) {
			return "using terminating endpoints"
		}
	}
	if s.TopologyMode != "" {
		ready := 0
		for _, ep := range s.Endpoints {
			if ep.Ready {
				ready++
			}
		}
		what := map[string]string{topology.ModePreferSameZone: "zone", topology.ModePreferSameNode: "node"}[s.TopologyMode]
		return fmt.Sprintf("%s hints: %d of %d ready", what, len(s.ClusterEndpoints), ready)
	}
	return ""
}
