package iptables

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
)

// dispatch identifies a chain shared by all service ports, which every sync
// rewrites whole.
type dispatch int

const (
	natServices     dispatch = iota // nat: cluster, external and LB IPs -> port chains
	natNodePorts                    // nat: node ports -> external chains
	filterServices                  // filter: cluster IPs that reject or drop
	filterExternal                  // filter: external addresses that reject or drop
	filterFirewall                  // filter: LB traffic not let in by a FW chain
	filterNodePorts                 // filter: health-check node ports accepted
	numDispatch
)

// ownChain is a nat chain that belongs to one service port.
type ownChain struct {
	name  string
	rules []string
}

// portRules are the rules of one service port: the lines it contributes to
// each dispatch chain, and the chains it owns (sorted by name).
type portRules struct {
	dispatch [numDispatch][]string
	// text holds each dispatch list joined, one line per rule, so that
	// rewriting the dispatch chains in a partial sync is a string copy.
	text   [numDispatch]string
	chains []ownChain
}

// family holds what differs between IPv4 and IPv6 rules.
type family struct {
	ipv6     bool
	loopback netip.Prefix
	pods     []netip.Prefix
	// nodePortsAll is true when node ports are served on every local
	// address (but loopback): no NodePortAddresses of this family, or one
	// of the whole family, as in kube-proxy. Else nodePorts are this
	// family's NodePortAddresses, masked and sorted, without those inside
	// loopback (none at all when every one was).
	nodePortsAll bool
	nodePorts    []netip.Prefix
}

func (o *Options) family(ipv6 bool) family {
	f := family{ipv6: ipv6, loopback: netip.MustParsePrefix("127.0.0.0/8")}
	if ipv6 {
		f.loopback = netip.MustParsePrefix("::1/128")
	}
	for _, p := range o.ClusterCIDRs {
		if p.IsValid() && p.Addr().Is6() == ipv6 {
			f.pods = append(f.pods, p.Masked())
		}
	}
	f.nodePortsAll = true
	for _, p := range o.NodePortAddresses {
		if !p.IsValid() || p.Addr().Is6() != ipv6 {
			continue
		}
		f.nodePortsAll = false
		if p.Bits() >= f.loopback.Bits() && f.loopback.Contains(p.Addr()) {
			continue
		}
		f.nodePorts = append(f.nodePorts, p.Masked())
	}
	slices.SortFunc(f.nodePorts, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	f.nodePorts = slices.Compact(f.nodePorts)
	if slices.ContainsFunc(f.nodePorts, func(p netip.Prefix) bool { return p.Bits() == 0 }) {
		f.nodePortsAll = true
	}
	return f
}

func host(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }

// quote makes a comment one iptables-restore word.
func quote(s string) string {
	if strings.ContainsAny(s, " \t\"'") {
		return `"` + strings.ReplaceAll(s, `"`, `'`) + `"`
	}
	return s
}

// rulesFor renders one service port, following kube-proxy's iptables
// proxier decision by decision (see the package documentation).
func (o *Options) rulesFor(p *servicemap.ServicePort, f family) portRules {
	var r portRules
	name := p.Name.String()
	proto := strings.ToLower(string(p.Protocol))
	match := "-m " + proto + " -p " + proto
	port := strconv.Itoa(int(p.Port))
	n := o.portChains(p.Name)
	masq := o.Prefix + "-MARK-MASQ"

	pol := p.Policy()
	clusterEps, localEps := p.Topology.Cluster, p.Topology.Local
	hasEndpoints := p.Topology.HasEndpoints
	hasInternal := hasEndpoints && !(pol.InternalLocal && len(localEps) == 0)
	externalLocal := p.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal
	hasExternal := hasEndpoints && !(externalLocal && len(localEps) == 0)
	usesCluster := len(clusterEps) > 0 && pol.UsesClusterEndpoints()
	usesLocal := len(localEps) > 0 && pol.UsesLocalEndpoints()
	usesExt := hasEndpoints && p.ExternallyAccessible()
	usesFW := usesExt && len(p.LoadBalancerIPs) > 0 && len(p.LoadBalancerSourceRanges) > 0

	internalChain, externalPolicyChain := n.svc, n.svc
	if pol.InternalLocal {
		internalChain = n.svl
	}
	if externalLocal {
		externalPolicyChain = n.svl
	}
	lbChain := n.ext
	if usesFW {
		lbChain = n.fw
	}

	filterTarget, filterComment := "", ""
	externalTarget, externalComment := "", ""
	if !hasEndpoints {
		filterTarget, filterComment = "REJECT", quote(name+" has no endpoints")
		externalTarget, externalComment = filterTarget, filterComment
	} else {
		if !hasInternal {
			filterTarget, filterComment = "DROP", quote(name+" has no local endpoints")
		}
		if !hasExternal {
			externalTarget, externalComment = "DROP", quote(name+" has no local endpoints")
		}
	}
	add := func(d dispatch, format string, args ...any) {
		r.dispatch[d] = append(r.dispatch[d], fmt.Sprintf(format, args...))
	}

	// Cluster IP.
	if hasInternal {
		add(natServices, "-A %s-SERVICES -m comment --comment %s %s -d %s --dport %s -j %s",
			o.Prefix, quote(name+" cluster IP"), match, host(p.ClusterIP), port, internalChain)
	} else {
		add(filterServices, "-A %s-SERVICES -m comment --comment %s %s -d %s --dport %s -j %s",
			o.Prefix, filterComment, match, host(p.ClusterIP), port, filterTarget)
	}
	// External IPs.
	for _, ip := range p.ExternalIPs {
		if hasEndpoints {
			add(natServices, "-A %s-SERVICES -m comment --comment %s %s -d %s --dport %s -j %s",
				o.Prefix, quote(name+" external IP"), match, host(ip), port, n.ext)
		}
		if !hasExternal {
			add(filterExternal, "-A %s-EXTERNAL-SERVICES -m comment --comment %s %s -d %s --dport %s -j %s",
				o.Prefix, externalComment, match, host(ip), port, externalTarget)
		}
	}
	// Load-balancer IPs.
	for _, ip := range p.LoadBalancerIPs {
		if hasEndpoints {
			add(natServices, "-A %s-SERVICES -m comment --comment %s %s -d %s --dport %s -j %s",
				o.Prefix, quote(name+" loadbalancer IP"), match, host(ip), port, lbChain)
		}
		if usesFW {
			add(filterFirewall, "-A %s-FIREWALL -m comment --comment %s %s -d %s --dport %s -j DROP",
				o.Prefix, quote(name+" traffic not accepted by "+n.fw), match, host(ip), port)
		}
		if !hasExternal {
			add(filterExternal, "-A %s-EXTERNAL-SERVICES -m comment --comment %s %s -d %s --dport %s -j %s",
				o.Prefix, externalComment, match, host(ip), port, externalTarget)
		}
	}
	// Node port.
	if p.NodePort != 0 {
		if hasEndpoints {
			add(natNodePorts, "-A %s-NODEPORTS -m comment --comment %s %s --dport %d -j %s",
				o.Prefix, quote(name), match, p.NodePort, n.ext)
		}
		if !hasExternal {
			add(filterExternal, "-A %s-EXTERNAL-SERVICES -m comment --comment %s -m addrtype --dst-type LOCAL %s --dport %d -j %s",
				o.Prefix, externalComment, match, p.NodePort, externalTarget)
		}
	}
	if p.HealthCheckNodePort != 0 {
		add(filterNodePorts, "-A %s-NODEPORTS -m comment --comment %s -m tcp -p tcp --dport %d -j ACCEPT",
			o.Prefix, quote(name+" health check node port"), p.HealthCheckNodePort)
	}

	own := func(chain string, rules ...string) { r.chains = append(r.chains, ownChain{name: chain, rules: rules}) }

	if usesExt {
		var rules []string
		c := func(comment, rest string) {
			rules = append(rules, fmt.Sprintf("-A %s -m comment --comment %s %s", n.ext, quote(comment), rest))
		}
		if !externalLocal {
			c("masquerade traffic for "+name+" external destinations", "-j "+masq)
		} else {
			for _, pods := range f.pods {
				c("pod traffic for "+name+" external destinations", "-s "+pods.String()+" -j "+n.svc)
			}
			c("masquerade LOCAL traffic for "+name+" external destinations", "-m addrtype --src-type LOCAL -j "+masq)
			c("route LOCAL traffic for "+name+" external destinations", "-m addrtype --src-type LOCAL -j "+n.svc)
		}
		if hasExternal {
			rules = append(rules, fmt.Sprintf("-A %s -j %s", n.ext, externalPolicyChain))
		}
		own(n.ext, rules...)
	}
	if usesFW {
		var rules []string
		for _, src := range p.LoadBalancerSourceRanges {
			rules = append(rules, fmt.Sprintf("-A %s -m comment --comment %s -s %s -j %s",
				n.fw, quote(name+" loadbalancer IP"), src, n.ext))
		}
		own(n.fw, rules...)
	}

	// The masquerade rule for off-cluster traffic to the cluster IP lives
	// in the chain cluster-IP traffic enters.
	var clusterMasq []string
	if hasInternal {
		for _, pods := range f.pods {
			clusterMasq = append(clusterMasq, fmt.Sprintf("-A %s -m comment --comment %s %s -d %s --dport %s ! -s %s -j %s",
				internalChain, quote(name+" cluster IP"), match, host(p.ClusterIP), port, pods, masq))
		}
	}
	if usesCluster {
		rules := slices.Clone(clusterMasq)
		if internalChain != n.svc {
			rules = nil
		}
		own(n.svc, append(rules, o.balance(n.svc, p, clusterEps)...)...)
	}
	if usesLocal {
		var rules []string
		if internalChain == n.svl {
			rules = slices.Clone(clusterMasq)
		}
		own(n.svl, append(rules, o.balance(n.svl, p, localEps)...)...)
	}
	if usesCluster || usesLocal {
		for _, ep := range p.Topology.Reachable() {
			r.chains = append(r.chains, o.endpointRules(p, ep, match))
		}
	}
	slices.SortFunc(r.chains, func(a, b ownChain) int { return strings.Compare(a.name, b.name) })
	for d, lines := range r.dispatch {
		if len(lines) > 0 {
			r.text[d] = strings.Join(lines, "\n") + "\n"
		}
	}
	return r
}

// balance writes the rules of a chain that spreads connections evenly over
// eps: with n endpoints, rule i matches with probability 1/(n-i) and the last
// always does. ClientIP affinity checks each endpoint's recent list first.
func (o *Options) balance(chain string, p *servicemap.ServicePort, eps []endpoints.Endpoint) []string {
	name := p.Name.String()
	rules := make([]string, 0, 2*len(eps))
	seps := make([]string, len(eps))
	for i, ep := range eps {
		seps[i] = o.endpointChain(p.Name, ep.String())
	}
	// Rules are built by concatenation: at 10,000 services x 10 endpoints
	// these lines are most of the restore input, and fmt is several times
	// slower here.
	if p.Affinity.ClientIP {
		seconds := strconv.Itoa(p.Affinity.TimeoutSeconds())
		for i, ep := range eps {
			rules = append(rules, "-A "+chain+" -m comment --comment "+quote(name+" -> "+ep.String())+
				" -m recent --name "+seps[i]+" --rcheck --seconds "+seconds+" --reap -j "+seps[i])
		}
	}
	for i, ep := range eps {
		rule := "-A " + chain + " -m comment --comment " + quote(name+" -> "+ep.String())
		if left := len(eps) - i; left > 1 {
			rule += " -m statistic --mode random --probability " + strconv.FormatFloat(1/float64(left), 'f', 10, 64)
		}
		rules = append(rules, rule+" -j "+seps[i])
	}
	return rules
}

// endpointRules returns the chain that DNATs to one endpoint, marking
// hairpin traffic (an endpoint reaching itself) for masquerade.
func (o *Options) endpointRules(p *servicemap.ServicePort, ep endpoints.Endpoint, match string) ownChain {
	sep := o.endpointChain(p.Name, ep.String())
	prefix := "-A " + sep + " -m comment --comment " + quote(p.Name.String())
	dnat := prefix
	if p.Affinity.ClientIP {
		dnat += " -m recent --name " + sep + " --set"
	}
	dnat += " " + match + " -j DNAT --to-destination " + ep.Addr.String()
	return ownChain{name: sep, rules: []string{
		prefix + " -s " + host(ep.Addr.Addr()) + " -j " + o.Prefix + "-MARK-MASQ",
		dnat,
	}}
}
