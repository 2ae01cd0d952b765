package backendtest

import (
	"io"
	"net/netip"
	"sync"
)

// The fixed addressing plan of a Network. Every Network uses the same
// addresses: each lives in its own set of namespaces, so they never meet.
var (
	nodeIP      = netip.MustParseAddr("10.100.0.1")
	clientIP    = netip.MustParseAddr("10.100.0.2")
	clientIP2   = netip.MustParseAddr("10.100.0.3")
	clientLink  = netip.MustParsePrefix("10.100.0.0/24")
	bridgeIP    = netip.MustParseAddr("10.244.1.1")
	clusterCIDR = netip.MustParsePrefix("10.244.1.0/24")
	serviceCIDR = netip.MustParsePrefix("10.96.0.0/16")
	// externalCIDR stands for the world outside the cluster: external and
	// load-balancer IPs live here.
	externalCIDR = netip.MustParsePrefix("10.97.0.0/16")
)

// firstBackendHost is the last octet of backend 0's address; backend i gets
// firstBackendHost+i, so at most maxBackends fit in the /24.
const (
	firstBackendHost = 10
	maxBackends      = 254 - firstBackendHost
	defaultBackends  = 3
	defaultPrefix    = "lbkt"
)

// NetworkOptions configures NewNetwork. The zero value is usable.
type NetworkOptions struct {
	// Backends is the number of backend namespaces; zero means 3.
	Backends int
	// Prefix starts every namespace name; empty means "lbkt". The process
	// id and a per-process counter follow it, so names stay unique across
	// parallel tests and test processes (for example lbkt-12345-1-node).
	Prefix string
	// DisableBridgeNetfilter sets net.bridge.bridge-nf-call-iptables to 0
	// in the node. By default it is 1, as on a real node (the kernel's
	// default with br_netfilter, and what kubeadm demands): frames bridged
	// between backends then pass the node's IP hooks. Measured here:
	// without it, a backend reaching another backend through a VIP without
	// masquerade times out, because the reply is bridged straight back and
	// never un-DNATed. With it, a backend reaching itself through a VIP
	// also needs the bridge port's hairpin mode (always on). A kernel
	// without br_netfilter fails NewNetwork unless this is set.
	DisableBridgeNetfilter bool
}

// Backend is one pod: a namespace on the node's bridge with one address.
type Backend struct {
	Name string     // answer of its servers, e.g. "b0"
	NS   string     // network namespace name
	IP   netip.Addr // 10.244.1.10 + index
}

// Network is a node, its backends and a client, each in its own network
// namespace, wired as described in NewNetwork. All methods are safe for
// concurrent use. A Network lives until the end of the test that made it.
type Network struct {
	nodeNS   string
	clientNS string
	backends []Backend
	created  []string // namespaces to delete on teardown, in creation order

	mu      sync.Mutex
	closed  bool
	served  map[uint16]bool
	servers []io.Closer    // listeners and packet conns of Serve
	wg      sync.WaitGroup // server goroutines
}

// NodeIP is the node's address on the client link; NodePorts are reached here.
func (n *Network) NodeIP() netip.Addr { return nodeIP }

// ClientIP is the client's default source address.
func (n *Network) ClientIP() netip.Addr { return clientIP }

// ClientIP2 is a second client address, for source-range allow and deny tests.
func (n *Network) ClientIP2() netip.Addr { return clientIP2 }

// ClusterCIDR is the pod range; every backend address is inside it.
func (n *Network) ClusterCIDR() netip.Prefix { return clusterCIDR }

// ServiceCIDR is routed from the client via the node, and from the node onto
// its bridge, so VIPs in it are reachable once a backend installs rules.
func (n *Network) ServiceCIDR() netip.Prefix { return serviceCIDR }

// ExternalCIDR is for external IPs and load-balancer IPs. It is routed like
// ServiceCIDR, so a packet to such an address that no rule rewrites leaves
// the node onto the bridge and goes unanswered, as it would through a real
// node's default route; it is neither refused nor reported unreachable
// before the node's forward hooks have seen it.
func (n *Network) ExternalCIDR() netip.Prefix { return externalCIDR }

// Backends returns a copy of the backends, in index order.
func (n *Network) Backends() []Backend { return append([]Backend(nil), n.backends...) }

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
	for _, b := range n.backends {
		if b.NS == ns {
			return true
		}
	}
	return false
}
