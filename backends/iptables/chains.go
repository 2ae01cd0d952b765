package iptables

import (
	"net/netip"
	"strconv"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/endpoints"
)

// appendChain appends the rules of chain c of s, one per line.
func (sp *Spec) appendChain(dst []byte, f *family, s *chainSet, c *ownChain) []byte {
	i := c.key.index()
	if i >= len(s.own) {
		if i -= len(s.own); i < len(s.fx) {
			for _, line := range s.fx[i].rules {
				dst = append(dst, line...)
				dst = append(dst, '\n')
			}
		}
		return dst
	}
	r := s.own[i]
	switch c.key.kind() {
	case chainSEP:
		return sp.appendSEP(dst, c, &s.ports[i])
	case chainFW:
		for _, src := range r.port.LoadBalancerSourceRanges {
			dst = appendOwnHead(dst, r.fw, r.name, " loadbalancer IP", "")
			dst = append(dst, " -s "...)
			dst = src.AppendTo(dst)
			dst = appendJump(dst, r.ext)
		}
		return dst
	}
	// The port's plan again, rather than a copy kept with every port
	// between syncs: the same pure, allocation-free decision rulesFor made.
	plan := backends.Plan(r.port)
	switch c.key.kind() {
	case chainEXT:
		return sp.appendEXT(dst, f, r, &plan)
	case chainSVC:
		return sp.appendBalance(dst, f, r, &plan, r.svc, plan.Cluster, r.clusterSEP)
	default:
		return sp.appendBalance(dst, f, r, &plan, r.svl, plan.Local, r.localSEP)
	}
}

// appendEXT writes the chain external traffic enters: Cluster-policy
// traffic is masqueraded; where the plan short-circuits, pod and node
// traffic goes to the cluster endpoints; the rest follows the external
// route.
func (sp *Spec) appendEXT(dst []byte, f *family, r *portRules, plan *backends.PortPlan) []byte {
	ext := &plan.External
	if !ext.Local {
		dst = appendOwnHead(dst, r.ext, "masquerade traffic for ", r.name, " external destinations")
		dst = sp.appendMasqJump(dst)
	}
	if plan.ShortCircuit {
		for _, pods := range f.pods {
			dst = appendOwnHead(dst, r.ext, "pod traffic for ", r.name, " external destinations")
			dst = append(dst, " -s "...)
			dst = pods.AppendTo(dst)
			dst = appendJump(dst, r.svc)
		}
		dst = appendOwnHead(dst, r.ext, "masquerade LOCAL traffic for ", r.name, " external destinations")
		dst = append(dst, " -m addrtype --src-type LOCAL"...)
		dst = sp.appendMasqJump(dst)
		dst = appendOwnHead(dst, r.ext, "route LOCAL traffic for ", r.name, " external destinations")
		dst = append(dst, " -m addrtype --src-type LOCAL"...)
		dst = appendJump(dst, r.svc)
	}
	if ext.Verdict == backends.Forward {
		dst = append(dst, "-A "...)
		dst = append(dst, r.ext...)
		dst = appendJump(dst, r.routeChain(ext))
	}
	return dst
}

// appendBalance writes a chain that spreads connections evenly over eps:
// with n endpoints, rule i matches with probability 1/(n-i) and the last
// always does. ClientIP affinity checks each endpoint's recent list first.
// The chain that cluster-IP traffic enters first masquerades traffic from
// outside the pod CIDR, or all of it with MasqueradeAll. sepIndex maps an index in eps to one in r.reach
// (nil: the same).
func (sp *Spec) appendBalance(dst []byte, f *family, r *portRules, plan *backends.PortPlan, chain string, eps []endpoints.Endpoint, sepIndex []int32) []byte {
	p := r.port
	if in := &plan.Internal; in.Verdict == backends.Forward && r.routeChain(in) == chain && (sp.MasqueradeAll || len(f.pods) > 0) {
		dst = appendOwnHead(dst, chain, r.name, " cluster IP", "")
		dst = append(dst, ' ')
		dst = append(dst, r.match...)
		dst = append(dst, " -d "...)
		dst = appendHost(dst, p.ClusterIP)
		dst = append(dst, " --dport "...)
		dst = strconv.AppendUint(dst, uint64(p.Port), 10)
		if !sp.MasqueradeAll {
			dst = append(dst, " ! -s "...)
			dst = f.pods[0].AppendTo(dst)
		}
		dst = sp.appendMasqJump(dst)
	}
	sep := func(dst []byte, i int) []byte {
		if sepIndex != nil {
			i = int(sepIndex[i])
		}
		return sp.appendKeyName(dst, r.chains[r.sep0+i].key)
	}
	if seconds := plan.AffinitySeconds; seconds > 0 {
		for i, ep := range eps {
			dst = appendEndpointHead(dst, chain, r.name, ep.Addr)
			dst = append(dst, " -m recent --name "...)
			dst = sep(dst, i)
			dst = append(dst, " --rcheck --seconds "...)
			dst = strconv.AppendInt(dst, int64(seconds), 10)
			dst = append(dst, " --reap"...)
			dst = append(dst, " -j "...)
			dst = append(sep(dst, i), '\n')
		}
	}
	for i, ep := range eps {
		dst = appendEndpointHead(dst, chain, r.name, ep.Addr)
		if left := len(eps) - i; left > 1 {
			dst = append(dst, " -m statistic --mode random --probability "...)
			dst = appendProbability(dst, left)
		}
		dst = append(dst, " -j "...)
		dst = append(sep(dst, i), '\n')
	}
	return dst
}

// probabilities are 1/n with 10 decimals, as written for n endpoints left.
var probabilities = func() (p [128]string) {
	for n := 2; n < len(p); n++ {
		p[n] = strconv.FormatFloat(1/float64(n), 'f', 10, 64)
	}
	return p
}()

func appendProbability(dst []byte, n int) []byte {
	if n < len(probabilities) {
		return append(dst, probabilities[n]...)
	}
	return strconv.AppendFloat(dst, 1/float64(n), 'f', 10, 64)
}

// appendSEP writes the chain that DNATs to one endpoint, marking hairpin
// traffic (an endpoint reaching itself) for masquerade. It reads c and
// its port's portInfo, not the port's rules (see chainSet).
func (sp *Spec) appendSEP(dst []byte, c *ownChain, r *portInfo) []byte {
	ep := c.endpoint()
	dst = append(dst, "-A "...)
	start := len(dst)
	dst = sp.appendKeyName(dst, c.key)
	end := len(dst)
	dst = append(dst, " -m comment --comment "...)
	dst = append(dst, r.comment...)
	dst = append(dst, " -s "...)
	dst = appendHost(dst, ep.Addr())
	dst = sp.appendMasqJump(dst)
	dst = append(dst, "-A "...)
	dst = append(dst, dst[start:end]...)
	dst = append(dst, " -m comment --comment "...)
	dst = append(dst, r.comment...)
	if r.affinity {
		dst = append(dst, " -m recent --name "...)
		dst = append(dst, dst[start:end]...)
		dst = append(dst, " --set"...)
	}
	dst = append(dst, ' ')
	dst = append(dst, r.match...)
	dst = append(dst, " -j DNAT --to-destination "...)
	dst = ep.AppendTo(dst)
	return append(dst, '\n')
}

// appendOwnHead appends "-A <chain> -m comment --comment <a+b+c>".
func appendOwnHead(dst []byte, chain, a, b, c string) []byte {
	dst = append(dst, "-A "...)
	dst = append(dst, chain...)
	dst = append(dst, ' ')
	return appendComment(dst, a, b, c)
}

// appendEndpointHead appends "-A <chain> -m comment --comment "<name> -> <ep>"".
func appendEndpointHead(dst []byte, chain, name string, ep netip.AddrPort) []byte {
	dst = append(dst, "-A "...)
	dst = append(dst, chain...)
	dst = append(dst, ` -m comment --comment "`...)
	dst = appendUnquoted(dst, name)
	dst = append(dst, " -> "...)
	dst = ep.AppendTo(dst)
	return append(dst, '"')
}

// appendJump appends " -j <target>" and ends the line.
func appendJump(dst []byte, target string) []byte {
	dst = append(dst, " -j "...)
	dst = append(dst, target...)
	return append(dst, '\n')
}

func (sp *Spec) appendMasqJump(dst []byte) []byte {
	dst = append(dst, " -j "...)
	dst = append(dst, sp.Prefix...)
	return append(dst, "-MARK-MASQ\n"...)
}
