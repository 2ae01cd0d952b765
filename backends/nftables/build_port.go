package nftables

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
)

// portPlan is a port's backends.PortPlan with the names of the chains it
// uses. A chain name is "" when the port has no such chain.
type portPlan struct {
	backends.PortPlan
	proto string
	base  []byte // names are a prefix and base; valid while the plan is
	// The port's chains, and "goto <chain>" (the name is cut from it).
	cluster, local, external, firewall   string
	gotoCluster, gotoLocal, gotoExternal string
}

// port builds the objects of one service port from its backends.PortPlan,
// in the shape of kube-proxy's nftables proxier (v1.37):
//
//   - Cluster IP: an element in the service-ips map going to the internal
//     route's chain (cluster or local), or, when the route rejects or
//     drops, one in the no-endpoint map. Traffic from outside the pod CIDRs
//     is marked for masquerade in the chain it enters.
//   - Node ports, external IPs and load-balancer IPs go to the external
//     chain when the port has one (UsesExternalChain): Cluster policy marks
//     for masquerade, then the cluster chain; where the plan short-circuits,
//     pods (ClusterCIDRs) and the node itself (fib saddr type local,
//     masqueraded) go to the cluster chain, the rest to the local one.
//     When the external route does not forward, the address is also in the
//     no-endpoint maps with the route's verdict.
//   - Load-balancer IPs with a Firewall: a firewall chain drops sources
//     outside AllowedSources before DNAT.
func (b *builder) port(p *servicemap.ServicePort) *portRules {
	pr := &portRules{}
	b.fill(pr, p)
	return pr
}

// fill is port, writing into pr.
func (b *builder) fill(pr *portRules, p *servicemap.ServicePort) {
	plan := b.plan(p)
	pr.name = p.Name
	used := plan.Reachable()
	b.elements(pr, &plan, used)

	// One affinity set per endpoint this node may use.
	var affinity map[netip.AddrPort]string
	if secs := plan.AffinitySeconds; secs > 0 && len(used) > 0 {
		affinity = make(map[netip.AddrPort]string, len(used))
		for i := range used {
			name := affinitySetName(p.Name, used[i].Addr, secs)
			affinity[used[i].Addr] = name
			pr.sets = append(pr.sets, set{
				name: name, key: keyType{addrField(b.fam)},
				flags:   flagDynamic | flagTimeout,
				timeout: time.Duration(secs) * time.Second,
			})
		}
	}
	b.chains(pr, &plan, affinity)
}

func (b *builder) plan(p *servicemap.ServicePort) portPlan {
	pl := portPlan{PortPlan: backends.Plan(p), proto: backends.ProtocolName(p.Protocol)}
	b.base = appendPortBase(b.base[:0], p.Name, pl.proto)
	pl.base = b.base
	if pl.Cluster != nil {
		pl.gotoCluster = b.name("goto "+prefixCluster, pl.base)
		pl.cluster = pl.gotoCluster[len("goto "):]
	}
	if pl.Local != nil {
		pl.gotoLocal = b.name("goto "+prefixLocal, pl.base)
		pl.local = pl.gotoLocal[len("goto "):]
	}
	if pl.UsesExternalChain() {
		pl.gotoExternal = b.name("goto "+prefixExternal, pl.base)
		pl.external = pl.gotoExternal[len("goto "):]
	}
	if pl.Firewall {
		pl.firewall = b.name(prefixFirewall, pl.base)
	}
	return pl
}

// target is the verdict of a route: "goto" its chain when it forwards.
func (pl *portPlan) target(r *backends.Route) string {
	switch {
	case r.Verdict == backends.Reject:
		return verdictReject
	case r.Verdict == backends.Drop:
		return verdictDrop
	case r.Local:
		return pl.gotoLocal
	}
	return pl.gotoCluster
}

// verdict is target as a statement.
func (pl *portPlan) verdict(r *backends.Route) stmt {
	switch {
	case r.Verdict == backends.Reject:
		return goTo(chainReject)
	case r.Verdict == backends.Drop:
		return drop()
	case r.Local:
		return goTo(pl.local)
	}
	return goTo(pl.cluster)
}

// elements adds the port's elements in the shared maps and sets, the
// hairpin pairs of the used endpoints on this node included.
func (b *builder) elements(pr *portRules, pl *portPlan, used []endpoints.Endpoint) {
	p := pl.Port
	vip := func(a netip.Addr) string {
		buf := a.AppendTo(b.buf[:0])
		buf = append(buf, " . "...)
		buf = append(buf, pl.proto...)
		buf = append(buf, " . "...)
		buf = strconv.AppendUint(buf, uint64(p.Port), 10)
		b.buf = buf
		return string(buf)
	}
	external := len(p.ExternalIPs) + len(p.LoadBalancerIPs)
	n := 2 + external
	hasExternal := pl.External.Verdict == backends.Forward
	if !hasExternal {
		n += external
	}
	if pl.firewall != "" {
		n += len(p.LoadBalancerIPs)
	}
	if p.NodePort != 0 {
		n += 2
	}
	if p.HealthCheckNodePort != 0 {
		n++
	}
	for i := range used {
		n += btoi(b.hairpinCandidate(&used[i]))
	}
	pr.elems = take(&b.elemSlab, n, b.slabSize)

	pr.elem(cClusterIPs, p.ClusterIP.String(), "")
	internalIn := cServiceIPs
	if pl.Internal.Verdict != backends.Forward {
		internalIn = cNoEndpointServices
	}
	pr.elem(internalIn, vip(p.ClusterIP), pl.target(&pl.Internal))
	for _, list := range [2][]netip.Addr{p.ExternalIPs, p.LoadBalancerIPs} {
		for _, a := range list {
			key := vip(a)
			if pl.external != "" {
				pr.elem(cServiceIPs, key, pl.gotoExternal)
			}
			if !hasExternal {
				pr.elem(cNoEndpointServices, key, pl.target(&pl.External))
			}
		}
	}
	if pl.firewall != "" {
		gotoFirewall := "goto " + pl.firewall
		for _, a := range p.LoadBalancerIPs {
			pr.elem(cFirewallIPs, vip(a), gotoFirewall)
		}
	}
	if p.NodePort != 0 {
		np := pl.proto + " . " + strconv.Itoa(int(p.NodePort))
		if pl.external != "" {
			pr.elem(cServiceNodePorts, np, pl.gotoExternal)
		}
		if !hasExternal {
			pr.elem(cNoEndpointNodePorts, np, pl.target(&pl.External))
		}
	}
	if p.HealthCheckNodePort != 0 {
		pr.elem(cHealthCheck, strconv.Itoa(int(p.HealthCheckNodePort)), "")
	}
	for i := range used {
		if ep := &used[i]; b.hairpinCandidate(ep) {
			buf := ep.Addr.Addr().AppendTo(b.buf[:0])
			buf = append(buf, " . "...)
			buf = ep.Addr.Addr().AppendTo(buf)
			b.buf = buf
			pr.elem(cHairpin, string(buf), "")
		}
	}
}

// chains adds the port's chains (and the firewall's source set).
func (b *builder) chains(pr *portRules, pl *portPlan, affinity map[netip.AddrPort]string) {
	p := pl.Port
	in := &pl.Internal
	internal := in.Verdict == backends.Forward
	pr.chains = take(&b.chainSlab, btoi(pl.cluster != "")+btoi(pl.local != "")+btoi(pl.external != "")+btoi(pl.firewall != ""), b.slabSize)
	if pl.cluster != "" {
		pr.chains = append(pr.chains, b.endpointChain(pl.cluster, p, pl.Cluster, affinity, internal && !in.Local))
	}
	if pl.local != "" {
		pr.chains = append(pr.chains, b.endpointChain(pl.local, p, pl.Local, affinity, internal && in.Local))
	}
	if pl.external != "" {
		forward := pl.External.Verdict == backends.Forward
		short := btoi(pl.ShortCircuit)
		ext := chain{name: pl.external,
			rules: take(&b.ruleSlab, btoi(!pl.External.Local)+short*(2+btoi(b.pods))+btoi(forward), b.slabSize)}
		if !pl.External.Local {
			ext.rules = append(ext.rules, b.rule(jump(chainMarkMasq)))
		}
		if pl.ShortCircuit {
			if b.pods {
				ext.rules = append(ext.rules, b.rule(inSet(setClusterCIDRs, fSaddr), goTo(pl.cluster)))
			}
			ext.rules = append(ext.rules,
				b.rule(fibLocal(fSaddr), jump(chainMarkMasq)),
				b.rule(fibLocal(fSaddr), goTo(pl.cluster)))
		}
		if forward {
			ext.rules = append(ext.rules, b.rule(pl.verdict(&pl.External)))
		}
		pr.chains = append(pr.chains, ext)
	}
	if pl.firewall != "" {
		sources := b.name(prefixSources, pl.base)
		pr.sets = append(pr.sets, intervalSet(sources, b.fam, pl.AllowedSources(b.nodeIPs)))
		rules := append(take(&b.ruleSlab, 1, b.slabSize), b.rule(notInSet(sources, fSaddr), drop()))
		pr.chains = append(pr.chains, chain{name: pl.firewall, rules: rules})
	}
}

// name returns prefix and base as one new string.
func (b *builder) name(prefix string, base []byte) string {
	b.buf = append(append(b.buf[:0], prefix...), base...)
	return string(b.buf)
}

func (pr *portRules) elem(in container, key, value string) {
	pr.elems = append(pr.elems, element{in: in, key: key, value: value})
}

// hairpinCandidate reports whether a pod could reach ep through a service
// address and be sent back to itself by this node: only endpoints on this
// node (or without a node name, such as hand-made EndpointSlices). When the
// snapshot does not name its node, every endpoint is a candidate.
func (b *builder) hairpinCandidate(ep *endpoints.Endpoint) bool {
	return !b.nodeKnown || ep.Local || ep.NodeName == ""
}

// endpointChain is a chain that picks one of eps (see endpointPick). The
// chain carrying internal (cluster IP) traffic first marks traffic from
// outside the pod CIDRs for masquerading, or all of it with
// Spec.MasqueradeAll.
func (b *builder) endpointChain(name string, p *servicemap.ServicePort, eps []endpoints.Endpoint,
	affinity map[netip.AddrPort]string, internal bool) chain {
	pick := b.takePick()
	*pick = endpointPick{proto: p.Protocol, eps: eps, affinity: affinity}
	if internal && (b.pods || b.spec.MasqueradeAll) {
		pick.clusterIP, pick.masqueradeAll = p.ClusterIP, b.spec.MasqueradeAll
	}
	return chain{name: name, pick: pick}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
