package iptables

import (
	"net/netip"
	"strconv"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
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

// dispatchSuffix is each dispatch chain's name after the prefix.
var dispatchSuffix = [numDispatch]string{
	natServices:     "-SERVICES",
	natNodePorts:    "-NODEPORTS",
	filterServices:  "-SERVICES",
	filterExternal:  "-EXTERNAL-SERVICES",
	filterFirewall:  "-FIREWALL",
	filterNodePorts: "-NODEPORTS",
}

// ownChain is a nat chain that belongs to one service port. Its key
// stands for its name (see chainKey), and a SEP chain holds its endpoint.
// It holds no pointer, so the garbage collector need not scan it.
type ownChain struct {
	key  chainKey
	addr [16]byte
	port uint16
	v4   bool
}

// endpoint returns the endpoint of a SEP chain. Endpoint addresses carry
// no zone (endpoints.ParseAddr rejects them, and iptables takes none).
func (c *ownChain) endpoint() netip.AddrPort {
	if c.v4 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(c.addr[12:])), c.port)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(c.addr), c.port)
}

// portRules are one service port's rules, made from its backends.PortPlan
// (the rules follow kube-proxy's iptables proxier; see the package
// documentation) and kept with the port: the lines it adds to each dispatch
// chain, its chain names, and what writing its chains' rules needs. The
// chains' rules themselves are written when a restore input is, so a
// backend does not hold them between syncs.
type portRules struct {
	port     *servicemap.ServicePort
	name     string // "namespace/name:port"
	comment  string // name as one word of a rule (quoted if need be)
	match    string // "-m tcp -p tcp"
	affinity bool   // the plan has ClientIP affinity
	// reach are the endpoints with a SEP chain: the plan's Reachable().
	reach []endpoints.Endpoint
	sep0  int // index of the first SEP chain in chains

	// text holds each dispatch chain's lines, one per rule, so that
	// rewriting the dispatch chains in a partial sync is a string copy and
	// comparing them tells whether they changed.
	text [numDispatch]string
	// chains are the chains the port owns: EXT, FW, SVC, SVL as used,
	// then one SEP chain per endpoint of reach, in reach's order.
	chains []ownChain
	// clusterSEP and localSEP map the index of a Cluster or Local
	// endpoint to its index in reach when they differ (then reach is
	// their union, sorted).
	clusterSEP, localSEP []int32
	// Chain names, substrings of one string.
	svc, svl, ext, fw string
}

// routeChain is the chain a forwarding route balances in: SVL for the
// Local list, SVC for the Cluster list.
func (r *portRules) routeChain(rt *backends.Route) string {
	if rt.Local {
		return r.svl
	}
	return r.svc
}

// filterVerdict is the filter target, and the end of its comment, for a
// route that does not forward.
func filterVerdict(v backends.Verdict) (target, comment string) {
	if v == backends.Reject {
		return "REJECT", " has no endpoints"
	}
	return "DROP", " has no local endpoints"
}

// planner holds the buffers one goroutine reuses to plan ports.
type planner struct {
	key, names []byte
	lines      [numDispatch][]byte
	joined     []byte
}

// matchFor returns the protocol match kube-proxy writes ("-m tcp -p tcp").
func matchFor(protocol v1.Protocol) string {
	name := backends.ProtocolName(protocol)
	return "-m " + name + " -p " + name
}

// rulesFor writes one service port's rules, from its plan, into r.
func (sp *Spec) rulesFor(p *servicemap.ServicePort, f *family, pl *planner, r *portRules) {
	plan := backends.Plan(p)
	*r = portRules{port: p, name: p.Name.String(), match: matchFor(p.Protocol), affinity: plan.AffinitySeconds > 0}
	name := r.name
	r.comment = name
	if needsQuotes(name) {
		r.comment = string(appendComment(nil, name, "", "")[len("-m comment --comment "):])
	}
	usesExt := plan.UsesExternalChain()
	usesFW := usesExt && plan.Firewall
	if plan.Cluster != nil || plan.Local != nil {
		r.reach = plan.Reachable()
	}

	// Names: the port's four chains in one string; the endpoints' chains
	// only as keys.
	pl.key = appendPortKey(pl.key[:0], name, string(p.Protocol))
	portKey := len(pl.key)
	pl.names = appendHash(pl.names[:0], pl.key)
	var hash [hashLen]byte
	copy(hash[:], pl.names)
	ends := [4 + 1]int{hashLen}
	for k := chainSVC; k <= chainFW; k++ {
		pl.names = appendChainName(pl.names, sp.Prefix, k, hash[:])
		ends[k+1] = len(pl.names)
	}
	names := string(pl.names[hashLen:])
	for k := chainSVC; k <= chainFW; k++ {
		*r.chainName(k) = names[ends[k]-hashLen : ends[k+1]-hashLen]
	}

	lbChain := r.ext
	if usesFW {
		lbChain = r.fw
	}

	// Dispatch lines.
	for d := range pl.lines {
		pl.lines[d] = pl.lines[d][:0]
	}
	l := &pl.lines
	// Cluster IP.
	if in := &plan.Internal; in.Verdict == backends.Forward {
		l[natServices] = sp.appendDst(l[natServices], natServices, name, " cluster IP", "", r.match, p.ClusterIP, p.Port, r.routeChain(in))
	} else {
		target, comment := filterVerdict(in.Verdict)
		l[filterServices] = sp.appendDst(l[filterServices], filterServices, name, comment, "", r.match, p.ClusterIP, p.Port, target)
	}
	// External traffic that is not forwarded is rejected or dropped.
	hasExternal := plan.External.Verdict == backends.Forward
	externalTarget, externalComment := filterVerdict(plan.External.Verdict)
	// External IPs.
	for _, ip := range p.ExternalIPs {
		if usesExt {
			l[natServices] = sp.appendDst(l[natServices], natServices, name, " external IP", "", r.match, ip, p.Port, r.ext)
		}
		if !hasExternal {
			l[filterExternal] = sp.appendDst(l[filterExternal], filterExternal, name, externalComment, "", r.match, ip, p.Port, externalTarget)
		}
	}
	// Load-balancer IPs.
	for _, ip := range p.LoadBalancerIPs {
		if usesExt {
			l[natServices] = sp.appendDst(l[natServices], natServices, name, " loadbalancer IP", "", r.match, ip, p.Port, lbChain)
		}
		if usesFW {
			l[filterFirewall] = sp.appendDst(l[filterFirewall], filterFirewall, name, " traffic not accepted by ", r.fw, r.match, ip, p.Port, "DROP")
		}
		if !hasExternal {
			l[filterExternal] = sp.appendDst(l[filterExternal], filterExternal, name, externalComment, "", r.match, ip, p.Port, externalTarget)
		}
	}
	// Node port.
	if p.NodePort != 0 {
		if usesExt {
			l[natNodePorts] = sp.appendNodePort(l[natNodePorts], natNodePorts, name, "", "", r.match, p.NodePort, r.ext)
		}
		if !hasExternal {
			l[filterExternal] = sp.appendNodePort(l[filterExternal], filterExternal, name, externalComment, "-m addrtype --dst-type LOCAL ", r.match, p.NodePort, externalTarget)
		}
	}
	if p.HealthCheckNodePort != 0 {
		l[filterNodePorts] = sp.appendNodePort(l[filterNodePorts], filterNodePorts, name, " health check node port", "", "-m tcp -p tcp", p.HealthCheckNodePort, "ACCEPT")
	}
	pl.joined = pl.joined[:0]
	var bounds [numDispatch + 1]int
	for d, line := range pl.lines {
		pl.joined = append(pl.joined, line...)
		bounds[d+1] = len(pl.joined)
	}
	if len(pl.joined) > 0 {
		text := string(pl.joined)
		for d := range r.text {
			r.text[d] = text[bounds[d]:bounds[d+1]]
		}
	}

	// Own chains.
	n := len(r.reach)
	if usesExt {
		n++
	}
	if usesFW {
		n++
	}
	if plan.Cluster != nil {
		n++
	}
	if plan.Local != nil {
		n++
	}
	r.chains = make([]ownChain, 0, n)
	if usesExt {
		r.chains = append(r.chains, ownChain{key: keyOf(chainEXT, hash[:])})
	}
	if usesFW {
		r.chains = append(r.chains, ownChain{key: keyOf(chainFW, hash[:])})
	}
	if plan.Cluster != nil {
		r.chains = append(r.chains, ownChain{key: keyOf(chainSVC, hash[:])})
		r.clusterSEP = sepIndex(plan.Cluster, r.reach)
	}
	if plan.Local != nil {
		r.chains = append(r.chains, ownChain{key: keyOf(chainSVL, hash[:])})
		r.localSEP = sepIndex(plan.Local, r.reach)
	}
	r.sep0 = len(r.chains)
	for _, ep := range r.reach {
		pl.key = ep.Addr.AppendTo(pl.key[:portKey])
		c := ownChain{key: keyOf(chainSEP, appendHash(hash[:0], pl.key)), port: ep.Addr.Port()}
		a := ep.Addr.Addr()
		c.addr, c.v4 = a.As16(), a.Is4()
		r.chains = append(r.chains, c)
	}
}

func (r *portRules) chainName(k chainKind) *string {
	switch k {
	case chainSVC:
		return &r.svc
	case chainSVL:
		return &r.svl
	case chainEXT:
		return &r.ext
	default:
		return &r.fw
	}
}

// sepIndex maps each endpoint of list to its index in reach (sorted by
// address, the union of Cluster and Local), or returns nil when list is
// reach.
func sepIndex(list, reach []endpoints.Endpoint) []int32 {
	if len(list) == len(reach) && (len(list) == 0 || &list[0] == &reach[0]) {
		return nil
	}
	idx := make([]int32, len(list))
	for j, ep := range list {
		i, _ := binarySearch(reach, ep)
		idx[j] = int32(i)
	}
	return idx
}

func binarySearch(eps []endpoints.Endpoint, ep endpoints.Endpoint) (int, bool) {
	lo, hi := 0, len(eps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if endpoints.Compare(eps[m], ep) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(eps) && endpoints.Compare(eps[lo], ep) == 0
}

// appendDst appends a dispatch rule matching a destination address and port:
// "-A <chain> -m comment --comment <a+b+c> <match> -d <ip>/32 --dport <port> -j <target>".
func (sp *Spec) appendDst(dst []byte, d dispatch, a, b, c, match string, ip netip.Addr, port uint16, target string) []byte {
	dst = sp.appendRuleHead(dst, d, a, b, c)
	dst = append(dst, match...)
	dst = append(dst, " -d "...)
	dst = appendHost(dst, ip)
	dst = append(dst, " --dport "...)
	dst = strconv.AppendUint(dst, uint64(port), 10)
	dst = append(dst, " -j "...)
	dst = append(dst, target...)
	return append(dst, '\n')
}

// appendNodePort appends a dispatch rule matching a local port:
// "-A <chain> -m comment --comment <a+b> <extra><match> --dport <port> -j <target>".
func (sp *Spec) appendNodePort(dst []byte, d dispatch, a, b, extra, match string, port uint16, target string) []byte {
	dst = sp.appendRuleHead(dst, d, a, b, "")
	dst = append(dst, extra...)
	dst = append(dst, match...)
	dst = append(dst, " --dport "...)
	dst = strconv.AppendUint(dst, uint64(port), 10)
	dst = append(dst, " -j "...)
	dst = append(dst, target...)
	return append(dst, '\n')
}

func (sp *Spec) appendRuleHead(dst []byte, d dispatch, a, b, c string) []byte {
	dst = append(dst, "-A "...)
	dst = append(dst, sp.Prefix...)
	dst = append(dst, dispatchSuffix[d]...)
	dst = append(dst, ' ')
	dst = appendComment(dst, a, b, c)
	return append(dst, ' ')
}
