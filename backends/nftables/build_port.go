//go:build linux

package nftables

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
)

// portPlan is what port decides for one service port before it writes any
// object. A chain name is "" when the port has no such chain.
type portPlan struct {
	p     *servicemap.ServicePort
	proto string
	base  []byte // names are a prefix and base; valid while the plan is
	// The port's chains, and "goto <chain>" (the name is cut from it).
	cluster, local, external, firewall   string
	gotoCluster, gotoLocal, gotoExternal string
	// internal is the chain cluster-IP traffic goes to, when hasInternal.
	internal    string
	hasInternal bool
	// hasExternal: external traffic that is not short-circuited has
	// endpoints to go to.
	hasExternal   bool
	externalLocal bool
	// noEndpoints is the filter verdict for traffic without endpoints.
	noEndpoints string
}

// port builds the objects of one service port. The decisions follow
// kube-proxy's nftables proxier (v1.37); topology.Categorize has already
// chosen the endpoints:
//
//   - No usable endpoint anywhere (Topology.HasEndpoints false): no NAT at
//     all; every address of the port, node ports included, is rejected by
//     the filter chains.
//   - Cluster IP: goes to the internal policy's chain (the cluster chain, or
//     the local one for internalTrafficPolicy Local). Local with no local
//     endpoint: dropped. Traffic from outside the pod CIDRs is masqueraded.
//   - Node ports, external IPs and load-balancer IPs go to the external
//     chain. Cluster policy: masquerade, then the cluster chain. Local
//     policy: pods (ClusterCIDRs) and the node itself (fib saddr type local,
//     masqueraded) short-circuit to the cluster chain, the rest goes to the
//     local chain; with no local endpoint the rest is dropped.
//   - Load-balancer IPs with source ranges: a firewall chain drops other
//     sources before DNAT. Node ports are not subject to source ranges.
func (b *builder) port(p *servicemap.ServicePort) *portRules {
	pr := &portRules{}
	b.fill(pr, p)
	return pr
}

// fill is port, writing into pr.
func (b *builder) fill(pr *portRules, p *servicemap.ServicePort) {
	plan := b.plan(p)
	pr.name = p.Name
	used := p.UsedEndpoints()
	b.elements(pr, &plan, used)

	// One affinity set per endpoint this node may use.
	var affinity map[netip.AddrPort]string
	if p.Affinity.ClientIP && len(used) > 0 {
		secs := p.Affinity.TimeoutSeconds()
		affinity = make(map[netip.AddrPort]string, len(used))
		for i := range used {
			name := affinitySetName(p.Name, used[i].Addr, secs)
			affinity[used[i].Addr] = name
			pr.sets = append(pr.sets, set{
				name: name, typ: b.fam.addrType,
				flags:   []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
				timeout: time.Duration(secs) * time.Second,
			})
		}
	}
	b.chains(pr, &plan, affinity)
}

func (b *builder) plan(p *servicemap.ServicePort) portPlan {
	top := &p.Topology
	pl := portPlan{p: p, proto: protoName(p.Protocol)}
	b.base = appendPortBase(b.base[:0], p.Name, pl.proto)
	pl.base = b.base
	if len(top.Cluster) > 0 {
		pl.gotoCluster = b.name("goto "+prefixCluster, pl.base)
		pl.cluster = pl.gotoCluster[len("goto "):]
	}
	if len(top.Local) > 0 {
		pl.gotoLocal = b.name("goto "+prefixLocal, pl.base)
		pl.local = pl.gotoLocal[len("goto "):]
	}
	if top.HasEndpoints && p.ExternallyAccessible() {
		pl.gotoExternal = b.name("goto "+prefixExternal, pl.base)
		pl.external = pl.gotoExternal[len("goto "):]
	}
	if len(p.LoadBalancerIPs) > 0 && len(p.LoadBalancerSourceRanges) > 0 {
		pl.firewall = b.name(prefixFirewall, pl.base)
	}

	pl.internal = pl.cluster
	if p.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal {
		pl.internal = pl.local
	}
	pl.hasInternal = pl.internal != ""
	pl.externalLocal = p.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	pl.hasExternal = pl.cluster != ""
	if pl.externalLocal {
		pl.hasExternal = pl.local != ""
	}
	// Without any endpoint the port is rejected; with endpoints that this
	// traffic cannot use (policy Local, none here) it is dropped.
	pl.noEndpoints = verdictDrop
	if !top.HasEndpoints {
		pl.noEndpoints = verdictReject
	}
	return pl
}

// elements adds the port's elements in the shared maps and sets, the
// hairpin pairs of the used endpoints on this node included.
func (b *builder) elements(pr *portRules, pl *portPlan, used []endpoints.Endpoint) {
	p := pl.p
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
	if !pl.hasExternal {
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
	pr.elems = b.takeElems(n)

	pr.elem(cClusterIPs, p.ClusterIP.String(), "")
	switch {
	case pl.internal == pl.cluster && pl.hasInternal:
		pr.elem(cServiceIPs, vip(p.ClusterIP), pl.gotoCluster)
	case pl.hasInternal:
		pr.elem(cServiceIPs, vip(p.ClusterIP), pl.gotoLocal)
	default:
		pr.elem(cNoEndpointServices, vip(p.ClusterIP), pl.noEndpoints)
	}
	for _, list := range [2][]netip.Addr{p.ExternalIPs, p.LoadBalancerIPs} {
		for _, a := range list {
			key := vip(a)
			if pl.external != "" {
				pr.elem(cServiceIPs, key, pl.gotoExternal)
			}
			if !pl.hasExternal {
				pr.elem(cNoEndpointServices, key, pl.noEndpoints)
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
		if !pl.hasExternal {
			pr.elem(cNoEndpointNodePorts, np, pl.noEndpoints)
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
	p := pl.p
	pr.chains = b.takeChains(btoi(pl.cluster != "") + btoi(pl.local != "") + btoi(pl.external != "") + btoi(pl.firewall != ""))
	if pl.cluster != "" {
		pr.chains = append(pr.chains, b.endpointChain(pl.cluster, p, pl.proto, p.Topology.Cluster, affinity, pl.internal == pl.cluster))
	}
	if pl.local != "" {
		pr.chains = append(pr.chains, b.endpointChain(pl.local, p, pl.proto, p.Topology.Local, affinity, pl.internal == pl.local))
	}
	if pl.external != "" {
		ext := chain{name: pl.external}
		switch {
		case !pl.externalLocal:
			ext.rules = append(ext.rules, "jump "+chainMarkMasq)
			if pl.cluster != "" {
				ext.rules = append(ext.rules, pl.gotoCluster)
			}
		default:
			if pl.cluster != "" {
				if b.pods {
					ext.rules = append(ext.rules, b.fam.ip+" saddr @"+setClusterCIDRs+" goto "+pl.cluster)
				}
				ext.rules = append(ext.rules,
					"fib saddr type local jump "+chainMarkMasq,
					"fib saddr type local goto "+pl.cluster)
			}
			if pl.local != "" {
				ext.rules = append(ext.rules, pl.gotoLocal)
			}
		}
		pr.chains = append(pr.chains, ext)
	}
	if pl.firewall != "" {
		sources := b.name(prefixSources, pl.base)
		pr.sets = append(pr.sets, intervalSet(sources, b.fam.addrType, b.allowedSources(p)))
		pr.chains = append(pr.chains, chain{name: pl.firewall, rules: []string{
			b.fam.ip + " saddr != @" + sources + " drop",
		}})
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
// outside the pod CIDRs for masquerading.
func (b *builder) endpointChain(name string, p *servicemap.ServicePort, proto string, eps []endpoints.Endpoint,
	affinity map[netip.AddrPort]string, internal bool) chain {
	pick := b.takePick()
	*pick = endpointPick{ip: b.fam.ip, proto: proto, eps: eps, affinity: affinity}
	if internal && b.pods {
		pick.clusterIP = p.ClusterIP
	}
	return chain{name: name, pick: pick}
}

// allowedSources returns the port's source ranges without overlaps (an
// interval set rejects overlapping elements), plus its load-balancer IPs
// when a range contains a node IP.
func (b *builder) allowedSources(p *servicemap.ServicePort) []netip.Prefix {
	ranges := p.LoadBalancerSourceRanges
	out := append([]netip.Prefix(nil), ranges...)
	for _, r := range ranges {
		if containsAny(r, b.nodeIPs) {
			for _, a := range p.LoadBalancerIPs {
				out = append(out, netip.PrefixFrom(a, a.BitLen()))
			}
			break
		}
	}
	return disjoint(out)
}

func containsAny(p netip.Prefix, addrs []netip.Addr) bool {
	for _, a := range addrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// disjoint sorts prefixes and drops those inside another one. Two prefixes
// either nest or do not overlap, so what remains is disjoint.
func disjoint(in []netip.Prefix) []netip.Prefix {
	ps := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		ps = append(ps, p.Masked())
	}
	sortPrefixes(ps)
	out := ps[:0]
	for _, p := range ps {
		if len(out) > 0 && out[len(out)-1].Overlaps(p) {
			continue // sorted by address then length: the earlier one contains p
		}
		out = append(out, p)
	}
	return out
}

func protoName(p v1.Protocol) string {
	switch p {
	case v1.ProtocolTCP:
		return "tcp"
	case v1.ProtocolUDP:
		return "udp"
	case v1.ProtocolSCTP:
		return "sctp"
	}
	return strings.ToLower(string(p))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
