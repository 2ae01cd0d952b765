package netlab

import (
	"io"
	"net/netip"
	"sync"

	v1 "k8s.io/api/core/v1"
)

// addressPlan is the fixed addressing of a Network of one family. Every
// Network of a family uses the same addresses: each lives in its own set
// of namespaces, so they never meet. The IPv6 plan mirrors the IPv4 one
// with unique local addresses: the same host numbers in fd00:… prefixes
// named after the IPv4 ones.
type addressPlan struct {
	family    v1.IPFamily
	nodeIP    netip.Addr // the node on the client link
	nodeIP2   netip.Addr // a second node address, outside clientLink
	clientIP  netip.Addr
	clientIP2 netip.Addr
	// clientLink is the client's subnet; it holds nodeIP but not nodeIP2,
	// which makes it the NodePortAddresses of the variant that sets them.
	clientLink  netip.Prefix
	bridgeIP    netip.Addr
	clusterCIDR netip.Prefix
	serviceCIDR netip.Prefix
	// externalCIDR stands for the world outside the cluster: external and
	// load-balancer IPs live here.
	externalCIDR netip.Prefix
	loopback     netip.Addr
}

var (
	plan4 = addressPlan{
		family:       v1.IPv4Protocol,
		nodeIP:       netip.MustParseAddr("10.100.0.1"),
		nodeIP2:      netip.MustParseAddr("10.101.0.1"),
		clientIP:     netip.MustParseAddr("10.100.0.2"),
		clientIP2:    netip.MustParseAddr("10.100.0.3"),
		clientLink:   netip.MustParsePrefix("10.100.0.0/24"),
		bridgeIP:     netip.MustParseAddr("10.244.1.1"),
		clusterCIDR:  netip.MustParsePrefix("10.244.1.0/24"),
		serviceCIDR:  netip.MustParsePrefix("10.96.0.0/16"),
		externalCIDR: netip.MustParsePrefix("10.97.0.0/16"),
		loopback:     netip.MustParseAddr("127.0.0.1"),
	}
	plan6 = addressPlan{
		family:       v1.IPv6Protocol,
		nodeIP:       netip.MustParseAddr("fd00:100::1"),
		nodeIP2:      netip.MustParseAddr("fd00:101::1"),
		clientIP:     netip.MustParseAddr("fd00:100::2"),
		clientIP2:    netip.MustParseAddr("fd00:100::3"),
		clientLink:   netip.MustParsePrefix("fd00:100::/64"),
		bridgeIP:     netip.MustParseAddr("fd00:244:1::1"),
		clusterCIDR:  netip.MustParsePrefix("fd00:244:1::/64"),
		serviceCIDR:  netip.MustParsePrefix("fd00:96::/112"),
		externalCIDR: netip.MustParsePrefix("fd00:97::/112"),
		loopback:     netip.MustParseAddr("::1"),
	}
)

func planFor(ipv6 bool) *addressPlan {
	if ipv6 {
		return &plan6
	}
	return &plan4
}

// HostIn returns the address number host of prefix p: 10.96.0.0/16 and
// 10 give 10.96.0.10; fd00:96::/112 and 10 give fd00:96::a.
func HostIn(p netip.Prefix, host int) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		sum := int(b[i]) + host
		b[i] = byte(sum)
		host = sum >> 8
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// firstBackendHost is the host number of backend 0's address in the
// cluster CIDR (10.244.1.10, fd00:244:1::a); backend i gets
// firstBackendHost+i, so at most maxBackends fit in the IPv4 /24.
const (
	firstBackendHost = 10
	maxBackends      = 254 - firstBackendHost
	defaultBackends  = 3
	defaultPrefix    = "lbkt"
)

// NetworkOptions configures NewNetwork. The zero value is usable.
type NetworkOptions struct {
	// Pods is the number of pod namespaces; zero means 3.
	Pods int
	// Prefix starts every namespace name; empty means "lbkt". The process
	// id and a per-process counter follow it, so names stay unique across
	// parallel tests and test processes (for example lbkt-12345-1-node).
	Prefix string
	// IPv6 builds the network with IPv6 addresses only (see NewNetwork for
	// both plans); every accessor then returns IPv6 addresses.
	IPv6 bool
	// Variant is the set of backend options the Network is for (what its
	// ClusterCIDRs and NodePortAddresses return). Its IPv6 is the same
	// as the field above: either one builds an IPv6 Network.
	Variant Variant
	// DisableBridgeNetfilter sets net.bridge.bridge-nf-call-iptables (and
	// -ip6tables) to 0 in the node. By default they are 1, as on a real
	// node (the kernel's default with br_netfilter, and what kubeadm
	// demands): frames bridged between backends then pass the node's IP
	// hooks. Measured here: without it, a backend reaching another backend
	// through a VIP without masquerade times out, because the reply is
	// bridged straight back and never un-DNATed. With it, a backend
	// reaching itself through a VIP also needs the bridge port's hairpin
	// mode (always on). A kernel without br_netfilter fails NewNetwork
	// unless this is set.
	DisableBridgeNetfilter bool
}

// Pod is one pod: a namespace on the node's bridge with one address.
type Pod struct {
	Name string     // answer of its servers, e.g. "b0"
	NS   string     // network namespace name
	IP   netip.Addr // host 10+index of ClusterCIDR: 10.244.1.10, fd00:244:1::a, ...
}

// Network is a node, its backends and a client, each in its own network
// namespace, wired as described in NewNetwork. All methods are safe for
// concurrent use. A Network lives until the end of the test that made it.
type Network struct {
	plan     *addressPlan
	variant  Variant // the options the backend under test is configured with
	nodeNS   string
	clientNS string
	pods     []Pod
	created  []string // namespaces to delete on teardown, in creation order

	mu      sync.Mutex
	closed  bool
	served  map[uint16]bool
	servers []io.Closer    // listeners and packet conns of Serve
	wg      sync.WaitGroup // server goroutines
}

// IPFamily is the Network's address family: v1.IPv4Protocol or
// v1.IPv6Protocol. A Tracker feeding a backend in it must be for this
// family.
func (n *Network) IPFamily() v1.IPFamily { return n.plan.family }

// NodeIP is the node's address on the client link; NodePorts are reached here.
func (n *Network) NodeIP() netip.Addr { return n.plan.nodeIP }

// NodeIP2 is a second address of the node, also reached from the client
// through the node, but outside the client link and so outside
// NodePortAddresses when a Variant sets them.
func (n *Network) NodeIP2() netip.Addr { return n.plan.nodeIP2 }

// NodeIPs are the node's addresses that clients reach it on: NodeIP and
// NodeIP2. (Its address on the bridge, towards the backends, is a node
// address too.)
func (n *Network) NodeIPs() []netip.Addr { return []netip.Addr{n.plan.nodeIP, n.plan.nodeIP2} }

// ClientIP is the client's default source address.
func (n *Network) ClientIP() netip.Addr { return n.plan.clientIP }

// ClientIP2 is a second client address, for source-range allow and deny tests.
func (n *Network) ClientIP2() netip.Addr { return n.plan.clientIP2 }

// ClusterCIDR is the pod range; every backend address is inside it.
func (n *Network) ClusterCIDR() netip.Prefix { return n.plan.clusterCIDR }

// ServiceCIDR is routed from the client via the node, and from the node onto
// its bridge, so VIPs in it are reachable once a backend installs rules.
func (n *Network) ServiceCIDR() netip.Prefix { return n.plan.serviceCIDR }

// ExternalCIDR is for external IPs and load-balancer IPs. It is routed like
// ServiceCIDR, so a packet to such an address that no rule rewrites leaves
// the node onto the bridge and goes unanswered, as it would through a real
// node's default route; it is neither refused nor reported unreachable
// before the node's forward hooks have seen it.
func (n *Network) ExternalCIDR() netip.Prefix { return n.plan.externalCIDR }

// Variant is the set of backend options the suite runs the current
// scenario with; for a Network made outside Run, the defaults of its
// family. A Factory configures the backend from it, through the accessors
// below.
func (n *Network) Variant() Variant { return n.variant }

// ClusterCIDRs are the pod ranges the backend under test is to be given:
// ClusterCIDR, or none in a variant without cluster CIDRs.
func (n *Network) ClusterCIDRs() []netip.Prefix {
	if n.variant.NoClusterCIDRs {
		return nil
	}
	return []netip.Prefix{n.plan.clusterCIDR}
}

// MasqueradeAll reports whether the backend under test is to masquerade
// all cluster-IP traffic (a variant that sets it).
func (n *Network) MasqueradeAll() bool { return n.variant.MasqueradeAll }

// NodePortAddresses are the node-port addresses the backend under test is
// to be given: none (node ports on every local address); or, in a variant
// that sets them, the client link's prefix of each family, which holds
// NodeIP but not NodeIP2; or only the other family's, which leaves this
// family unrestricted.
func (n *Network) NodePortAddresses() []netip.Prefix {
	other := planFor(n.plan.family == v1.IPv4Protocol).clientLink
	switch {
	case n.variant.NodePortAddresses:
		return []netip.Prefix{n.plan.clientLink, other}
	case n.variant.OtherFamilyNodePortAddresses:
		return []netip.Prefix{other}
	}
	return nil
}

// IsNodeAddr reports whether a is one of the node's addresses (NodeIPs
// and its address on the pods' bridge): what a masqueraded connection's
// source is.
func (n *Network) IsNodeAddr(a netip.Addr) bool {
	return a == n.plan.nodeIP || a == n.plan.nodeIP2 || a == n.plan.bridgeIP
}

// Pods returns a copy of the pods, in index order.
func (n *Network) Pods() []Pod { return append([]Pod(nil), n.pods...) }

// Pod returns pod i (0 <= i < NetworkOptions.Pods).
func (n *Network) Pod(i int) Pod { return n.pods[i] }

// Loopback is the node's loopback address of the Network's family.
func (n *Network) Loopback() netip.Addr { return n.plan.loopback }

// NodeNS is the name of the namespace where load-balancing rules belong.
func (n *Network) NodeNS() string { return n.nodeNS }

// ClientNS is the name of the client's namespace.
func (n *Network) ClientNS() string { return n.clientNS }

// owns reports whether ns is one of this Network's namespaces. Dials and
// commands are only run inside those, so test traffic cannot leave them.
func (n *Network) owns(ns string) bool {
	if ns == "" {
		return false
	}
	if ns == n.nodeNS || ns == n.clientNS {
		return true
	}
	for _, b := range n.pods {
		if b.NS == ns {
			return true
		}
	}
	return false
}
