package ipvs

// The netfilter half: what IPVS cannot do itself, in a table of its own.
// Fixed chains and rules; everything that depends on services is an
// element of a named set, so a sync only adds and deletes elements.

type setID int

const (
	setClusterIPs       setID = iota // cluster IP . proto . port: masquerade sources outside the pods
	setClusterCIDRs                  // the pod ranges (interval)
	setExternalMasq                  // external address . proto . port with Cluster policy: masquerade
	setNoEndpoints                   // no endpoint anywhere: reject
	setNoLocalEndpoints              // endpoints elsewhere, none for this traffic: drop
	setFirewall                      // load-balancer IP . proto . port with source ranges
	setFirewallAllow                 // ... . allowed source range (interval)
	setHairpin                       // endpoint . same endpoint: a pod reaching itself
	setShortCircuit                  // external address . proto . port whose pod and node traffic goes to the cluster IP
	setShortCircuitTo                // map: ... : cluster IP . port (the destination NAT of setShortCircuit)
	setNodeAddrServers               // record of virtual servers lbkit made on node addresses (ownership)
	numSets
)

type setSpec struct {
	name     string
	typ      func(family) string
	value    func(family) string // a map's value type; nil for a set
	interval bool
}

func svcKeyType(f family) string { return f.AddrType + " . inet_proto . inet_service" }

var setSpecs = [numSets]setSpec{
	setClusterIPs:       {name: "cluster-ips", typ: svcKeyType},
	setClusterCIDRs:     {name: "cluster-cidrs", typ: func(f family) string { return f.AddrType }, interval: true},
	setExternalMasq:     {name: "external-masq", typ: svcKeyType},
	setNoEndpoints:      {name: "no-endpoints", typ: svcKeyType},
	setNoLocalEndpoints: {name: "no-local-endpoints", typ: svcKeyType},
	setFirewall:         {name: "firewall", typ: svcKeyType},
	setFirewallAllow: {name: "firewall-allow", interval: true,
		typ: func(f family) string { return svcKeyType(f) + " . " + f.AddrType }},
	setHairpin:      {name: "hairpin", typ: func(f family) string { return f.AddrType + " . " + f.AddrType }},
	setShortCircuit: {name: "short-circuit", typ: svcKeyType},
	setShortCircuitTo: {name: "short-circuit-to", typ: svcKeyType,
		value: func(f family) string { return f.AddrType + " . inet_service" }},
	setNodeAddrServers: {name: "node-address-servers", typ: svcKeyType},
}
