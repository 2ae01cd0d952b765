package main

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
)

// explainPath is the path one new connection from the client takes to one
// frontend of the port.
type explainPath struct {
	From           string       `json:"from"`
	Source         string       `json:"source"`
	To             string       `json:"to"`
	Frontend       string       `json:"frontend"`
	Verdict        string       `json:"verdict"`
	Masquerade     bool         `json:"masquerade"`
	ShortCircuited bool         `json:"shortCircuited"`
	Firewalled     bool         `json:"firewalled"`
	Balance        string       `json:"balance"`
	Endpoints      []explainBal `json:"endpoints"`
}

// explainBal is one endpoint a connection may be balanced to.
type explainBal struct {
	Address string `json:"address"`
	// Share is the chance a new connection ends here.
	Share string `json:"share"`
	// Rule is how the backend's rule chooses it (iptables' statistic
	// probability, nftables' numgen test), "" when it has none.
	Rule string `json:"rule"`
}

// pathOptions are what explain --from needs to classify the client and
// describe the backend's choice.
type pathOptions struct {
	from      netip.Addr
	to        netip.AddrPort // zero: every frontend of the port
	pods      []netip.Prefix
	masqAll   bool
	nodeIPs   []netip.Addr
	backend   string
	scheduler string
}

// explainPaths decides the connection from o.from to each frontend of p.
func explainPaths(p *servicemap.ServicePort, o pathOptions) []explainPath {
	plan := backends.Plan(p)
	source := backends.FromOutside
	switch {
	case slices.Contains(o.nodeIPs, o.from):
		source = backends.FromNode
	case slices.ContainsFunc(o.pods, func(c netip.Prefix) bool { return c.Contains(o.from) }):
		source = backends.FromPod
	}
	type frontend struct {
		kind backends.Frontend
		addr netip.AddrPort
	}
	fronts := []frontend{{backends.FrontendClusterIP, netip.AddrPortFrom(p.ClusterIP, p.Port)}}
	if p.NodePort != 0 {
		for _, a := range o.nodeIPs {
			if a.Is6() == p.ClusterIP.Is6() {
				fronts = append(fronts, frontend{backends.FrontendNodePort, netip.AddrPortFrom(a, p.NodePort)})
			}
		}
		if len(o.nodeIPs) == 0 {
			fronts = append(fronts, frontend{backends.FrontendNodePort, netip.AddrPortFrom(netip.Addr{}, p.NodePort)})
		}
	}
	for _, a := range p.ExternalIPs {
		fronts = append(fronts, frontend{backends.FrontendExternalIP, netip.AddrPortFrom(a, p.Port)})
	}
	for _, a := range p.LoadBalancerIPs {
		fronts = append(fronts, frontend{backends.FrontendLoadBalancerIP, netip.AddrPortFrom(a, p.Port)})
	}
	var out []explainPath
	for _, f := range fronts {
		if o.to.IsValid() && f.addr != o.to && !(f.kind == backends.FrontendNodePort && f.addr.Port() == o.to.Port() && !f.addr.Addr().IsValid()) {
			continue
		}
		d := plan.Decide(backends.Connection{Frontend: f.kind, From: source, PodsKnown: len(o.pods) > 0, MasqueradeAll: o.masqAll, Addr: o.from})
		to := f.addr.String()
		if !f.addr.Addr().IsValid() {
			to = "node address:" + strconv.Itoa(int(f.addr.Port()))
		}
		path := explainPath{
			From: o.from.String(), Source: source.String(), To: to, Frontend: f.kind.String(),
			Verdict: d.Verdict.String(), Masquerade: d.Masquerade, ShortCircuited: d.ShortCircuited, Firewalled: d.Firewalled,
			Endpoints: []explainBal{},
		}
		switch d.Verdict {
		case backends.Reject:
			path.Verdict = "REJECT (refused at once: no usable endpoint anywhere)"
		case backends.Drop:
			path.Verdict = "DROP (no answer: Local policy without an endpoint on this node)"
			if d.Firewalled {
				path.Verdict = "DROP (the source is outside loadBalancerSourceRanges)"
			}
		default:
			path.Verdict = "forward"
			path.Balance, path.Endpoints = balance(d, plan.AffinitySeconds, o)
		}
		out = append(out, path)
	}
	return out
}

// balance describes how the backend spreads new connections over d's
// endpoints.
func balance(d backends.Decision, affinity int, o pathOptions) (string, []explainBal) {
	n := len(d.Endpoints)
	how := map[string]string{
		"nftables":  "a cascade of numgen random rules, each endpoint 1/n",
		"iptables":  "a cascade of statistic random rules, each endpoint 1/n",
		"ipvs":      "IPVS scheduler " + o.scheduler,
		"userspace": "the picker, round robin",
		"":          "an even choice, each endpoint 1/n",
	}[o.backend]
	if affinity > 0 {
		how += fmt.Sprintf("; ClientIP affinity: a client stays on its first endpoint while it reconnects within %ds", affinity)
	}
	out := make([]explainBal, n)
	for i, ep := range d.Endpoints {
		b := explainBal{Address: ep.String(), Share: fmt.Sprintf("1/%d", n)}
		left := n - i
		switch o.backend {
		case "iptables":
			if left > 1 {
				b.Rule = "-m statistic --mode random --probability " + strconv.FormatFloat(1/float64(left), 'f', 10, 64)
			} else {
				b.Rule = "(last rule: always)"
			}
		case "nftables":
			if left > 1 {
				b.Rule = fmt.Sprintf("numgen random mod %d == 0", left)
			} else {
				b.Rule = "(last rule: always)"
			}
		case "ipvs":
			b.Rule = "weight 1"
		}
		out[i] = b
	}
	return how, out
}
