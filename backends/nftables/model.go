package nftables

import (
	"time"

	"github.com/lbkit/lbkit/servicemap"
)

// The desired state is built once, as a model, from which both Render (text)
// and the apply path (knftables transactions) are derived.

// ruleset is the whole desired table.
type ruleset struct {
	skeleton
	// ports are sorted by name.
	ports []*portRules
}

// skeleton is the part of the table that does not depend on the services:
// the base chains, the dispatch chains and the containers (maps and sets)
// that service ports add elements to.
type skeleton struct {
	fam family
	// containers are the declarations of the shared maps and sets, indexed
	// by container.
	containers [numContainers]set
	// static are sets whose elements come from the Spec (pod CIDRs, node-port
	// address ranges); absent when the option is empty.
	static []set
	// base are the chains attached to hooks; fixed are the regular chains
	// they jump to.
	base  []chain
	fixed []chain
}

// portRules is everything one service port puts in the table: its own sets
// and chains, and its elements in the shared containers.
type portRules struct {
	name   servicemap.ServicePortName
	sets   []set
	chains []chain
	elems  []element
}

type chain struct {
	name  string
	hook  *hook // nil for a regular chain
	rules []rule
	// pick, when set, adds the rules that choose an endpoint after rules.
	// They are generated when needed (text, transaction, fingerprint) from
	// the snapshot's endpoint list, so that a ruleset for 100,000 endpoints
	// does not hold a copy of every rule.
	pick *endpointPick
}

// eachRule calls f with every rule of the chain, in order. A rule is valid
// only during the call. scratch is reused and returned.
func (c *chain) eachRule(scratch rule, f func(r rule)) rule {
	for _, r := range c.rules {
		f(r)
	}
	if c.pick != nil {
		scratch = c.pick.eachRule(scratch, f)
	}
	return scratch
}

// ruleText returns the text of rule i of the chain, "" when it has none.
func (c *chain) ruleText(i int, fam *family) string {
	var text string
	n := 0
	c.eachRule(nil, func(r rule) {
		if n == i {
			text = r.text(fam)
		}
		n++
	})
	return text
}

// ruleCount returns the number of rules in the chain.
func (c *chain) ruleCount() int {
	n := len(c.rules)
	if c.pick != nil {
		n += c.pick.count()
	}
	return n
}

// hook attaches a base chain: typ is "filter" or "nat", hook a netfilter
// hook ("prerouting", "input", ...).
type hook struct {
	typ, hook string
	priority  int
}

type set struct {
	name  string
	isMap bool // a verdict map
	// key are the types of the key's fields, unused ones zero.
	key     keyType
	flags   setFlags
	timeout time.Duration
	// elems are the elements the set is filled with on every sync (static
	// sets, firewall sources). Affinity sets have none: the packet path
	// fills them.
	elems []string
}

// keyType is the type of a set's or map's key: up to three fields, the
// unused ones zero.
type keyType [3]setField

// setField is the type of one field of a key, one of those lbkit's sets and
// maps use.
type setField uint8

const (
	fAddr4 setField = iota + 1
	fAddr6
	fProto
	fService
)

var fieldNames = [...]string{fAddr4: "ipv4_addr", fAddr6: "ipv6_addr", fProto: "inet_proto", fService: "inet_service"}

// addrField is the field type of one address of fam.
func addrField(fam family) setField {
	if fam.Is6 {
		return fAddr6
	}
	return fAddr4
}

// fields returns the key's fields.
func (k *keyType) fields() []setField {
	n := 0
	for n < len(k) && k[n] != 0 {
		n++
	}
	return k[:n]
}

// appendType appends the set's type as nft spells it, for example
// "ipv4_addr . inet_proto . inet_service : verdict".
func (s *set) appendType(b []byte) []byte {
	for i, f := range s.key.fields() {
		if i > 0 {
			b = append(b, " . "...)
		}
		b = append(b, fieldNames[f]...)
	}
	if s.isMap {
		b = append(b, " : verdict"...)
	}
	return b
}

// setFlags are a set's flags, as bits.
type setFlags uint8

const (
	flagDynamic setFlags = 1 << iota
	flagInterval
	flagTimeout
	numFlagBits = iota
)

var flagNames = [numFlagBits]string{"dynamic", "interval", "timeout"}

// names returns the flags' names, in nft's order.
func (f setFlags) names() []string {
	var out []string
	for i, name := range flagNames {
		if f&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// container is one of the shared maps and sets.
type container uint8

const (
	cServiceIPs container = iota
	cServiceNodePorts
	cNoEndpointServices
	cNoEndpointNodePorts
	cFirewallIPs
	cHairpin
	cHealthCheck
	cClusterIPs
	numContainers
)

var containerNames = [numContainers]string{
	cServiceIPs:          mapServiceIPs,
	cServiceNodePorts:    mapServiceNodePorts,
	cNoEndpointServices:  mapNoEPServices,
	cNoEndpointNodePorts: mapNoEPNodePorts,
	cFirewallIPs:         mapFirewallIPs,
	cHairpin:             setHairpin,
	cHealthCheck:         setHealthCheck,
	cClusterIPs:          setClusterIPs,
}

func (c container) name() string { return containerNames[c] }
func (c container) isMap() bool  { return c <= cFirewallIPs }

// element is one element a service port puts in a shared container.
type element struct {
	in container
	// key is the nft text of the key, parts joined by " . ".
	key string
	// value is the verdict of a map element, "" in a set.
	value string
}

// elemID identifies an element: its container and key.
type elemID struct {
	in  container
	key string
}

func (e element) id() elemID { return elemID{e.in, e.key} }

// forEachElement calls f once per element of ports, in port order. When
// several ports give the same key, the first (smallest name) wins, as in the
// record of applied state.
func forEachElement(ports []*portRules, f func(e element)) {
	seen := make(map[elemID]struct{}, len(ports)*2)
	for _, p := range ports {
		for _, e := range p.elems {
			id := e.id()
			if _, dup := seen[id]; dup {
				continue
			}
			seen[id] = struct{}{}
			f(e)
		}
	}
}
