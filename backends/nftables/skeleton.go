package nftables

import (
	v1 "k8s.io/api/core/v1"
)

// The skeleton: the base chains, attached to hooks, and the fixed chains
// they jump to. The rules that depend on nothing are built once.

var (
	newToFirewallCheck   = rule{ctNew(), jump(chainFirewallCheck)}
	newToServiceEPCheck  = rule{ctNew(), jump(chainServiceEPCheck)}
	newToClusterIPsCheck = rule{ctNew(), jump(chainClusterIPsCheck)}

	// baseChains do not depend on the Spec; with service CIDRs, the
	// unallocated chains come after them.
	baseChains = []chain{
		{name: "filter-prerouting", hook: &hook{"filter", "prerouting", prioPreDNAT},
			rules: []rule{newToFirewallCheck}},
		{name: "filter-input", hook: &hook{"filter", "input", prioPreDNAT},
			rules: []rule{
				// Accepting here cannot override another table's drop (every
				// base chain gets its say); it keeps lbkit's own checks off
				// health-check traffic and lists the ports for people.
				{l4proto(v1.ProtocolTCP), inSet(setHealthCheck, fDport), accept()},
				{ctNew(), jump(chainNodePortEPCheck)},
				newToServiceEPCheck,
			}},
		{name: "filter-forward", hook: &hook{"filter", "forward", prioPreDNAT},
			rules: []rule{newToServiceEPCheck, newToClusterIPsCheck}},
		{name: "filter-output", hook: &hook{"filter", "output", prioPreDNAT},
			rules: []rule{newToFirewallCheck}},
		{name: "filter-output-post-dnat", hook: &hook{"filter", "output", prioPostDNAT},
			rules: []rule{newToServiceEPCheck, newToClusterIPsCheck}},
		{name: "nat-prerouting", hook: &hook{"nat", "prerouting", prioDNAT},
			rules: []rule{{jump(chainServices)}}},
		{name: "nat-output", hook: &hook{"nat", "output", prioDNAT},
			rules: []rule{{jump(chainServices)}}},
		{name: "nat-postrouting", hook: &hook{"nat", "postrouting", prioSNAT},
			rules: []rule{{jump(chainMasquerading)}}},
	}

	// A new connection still addressed inside the service ranges once
	// every table's own checks had their say (one priority later than the
	// rejects, so that no shard's drop pre-empts another shard's reject) is
	// for an address no Service holds: dropped, as kube-proxy does, rather
	// than routed out of the node.
	unallocated      = []rule{{ctNew(), inSet(setServiceCIDRs, fDaddr), drop()}}
	baseChainsInCIDR = append(baseChains[:len(baseChains):len(baseChains)],
		chain{name: "filter-forward-unallocated", hook: &hook{"filter", "forward", prioPreDNAT + 1}, rules: unallocated},
		chain{name: "filter-output-unallocated", hook: &hook{"filter", "output", prioPostDNAT + 1}, rules: unallocated})

	dispatchServiceIPs   = rule{vmap(mapServiceIPs, fDaddr, fL4proto, fDport)}
	dispatchFirewallIPs  = rule{vmap(mapFirewallIPs, fDaddr, fL4proto, fDport)}
	dispatchNoEPServices = rule{vmap(mapNoEPServices, fDaddr, fL4proto, fDport)}
	// A pod that reaches itself through a service address: without
	// masquerade it would answer itself directly and drop the reply.
	hairpinMasquerade = rule{ctDNAT(), inSet(setHairpin, fSaddr, fDaddr), masquerade()}
	// Map values can only be verdicts, and reject is not one.
	rejectChain = chain{name: chainReject, rules: []rule{{reject()}}}
	// A new connection still addressed to a cluster IP at the forward hook,
	// or after output's DNAT, asked for a port the service does not have (a
	// port it has was DNATed to an endpoint by then): it is refused at once,
	// as kube-proxy does, rather than routed towards an address nothing
	// owns.
	clusterIPsCheckChain = chain{name: chainClusterIPsCheck, rules: []rule{{inSet(setClusterIPs, fDaddr), reject()}}}
)

func (b *builder) skeleton() skeleton {
	fam := b.fam
	addr := addrField(fam)
	svcKey := keyType{addr, fProto, fService}
	portKey := keyType{fProto, fService}
	s := skeleton{fam: fam, base: baseChains}
	s.containers = [numContainers]set{
		cServiceIPs:          {name: mapServiceIPs, isMap: true, key: svcKey},
		cServiceNodePorts:    {name: mapServiceNodePorts, isMap: true, key: portKey},
		cNoEndpointServices:  {name: mapNoEPServices, isMap: true, key: svcKey},
		cNoEndpointNodePorts: {name: mapNoEPNodePorts, isMap: true, key: portKey},
		cFirewallIPs:         {name: mapFirewallIPs, isMap: true, key: svcKey},
		cHairpin:             {name: setHairpin, key: keyType{addr, addr}},
		cHealthCheck:         {name: setHealthCheck, key: keyType{fService}},
		cClusterIPs:          {name: setClusterIPs, key: keyType{addr}},
	}

	// Node ports: never on loopback, and only on NodePortAddresses when set.
	// The rules are [fib daddr type local] DADDR vmap @MAP.
	nodePorts := make(rule, 0, 8)
	nodePorts = append(nodePorts, fibLocal(fDaddr), addrNotIn(fDaddr, fam.Loopback))
	if cidrs := prefixesOf(fam, b.spec.ClusterCIDRs); len(cidrs) > 0 {
		s.static = append(s.static, intervalSet(setClusterCIDRs, fam, cidrs))
	}
	if npa := prefixesOf(fam, b.spec.NodePortAddresses); len(npa) > 0 {
		s.static = append(s.static, intervalSet(setNodePortAddrs, fam, npa))
		nodePorts = append(nodePorts, inSet(setNodePortAddrs, fDaddr))
	}
	n := len(nodePorts)
	nodePorts = append(nodePorts, vmap(mapServiceNodePorts, fL4proto, fDport))
	noEPNodePorts := append(nodePorts[1:n:n], vmap(mapNoEPNodePorts, fL4proto, fDport))
	if len(b.svcCIDRs) > 0 {
		s.static = append(s.static, intervalSet(setServiceCIDRs, fam, b.svcCIDRs))
		s.base = baseChainsInCIDR
	}
	mark := b.spec.MasqueradeMark
	s.fixed = []chain{
		{name: chainServices, rules: []rule{dispatchServiceIPs, nodePorts}},
		{name: chainMasquerading, rules: []rule{{markAny(mark), markAnd(^mark), masquerade()}, hairpinMasquerade}},
		{name: chainMarkMasq, rules: []rule{{markOr(mark)}}},
		{name: chainFirewallCheck, rules: []rule{dispatchFirewallIPs}},
		{name: chainServiceEPCheck, rules: []rule{dispatchNoEPServices}},
		{name: chainNodePortEPCheck, rules: []rule{noEPNodePorts}},
		rejectChain,
		clusterIPsCheckChain,
	}
	return s
}
