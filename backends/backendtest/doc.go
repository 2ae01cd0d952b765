// Package backendtest is the conformance suite every lbkit backend runs
// against real packets, ours and a user's alike, and the namespace network
// it runs them in.
//
// # The suite
//
// [Run] takes a [Factory] that makes the backend under test and runs one
// subtest per scenario (see [Scenarios]) and variant (below), each in a
// fresh [Network]. A scenario builds Services and EndpointSlices of the
// Network's family (service addresses in ServiceCIDR, endpoints on backend
// i at host 10+i of ClusterCIDR: 10.244.1.10+i or fd00:244:1::a+i;
// nodeName "node" makes them local, "other" remote), feeds them to a
// servicemap.Tracker for node "node" and that family, calls Sync(ctx,
// prev, next) inside the node's namespace, clears stale UDP flows with
// package conntrack, and checks what connections from the client namespace
// reach, and the client address the backend saw:
//
//   - ClusterIPSpread: of 300 connections to a cluster IP, each of 3 ready
//     endpoints gets at least 50; the connection is masqueraded when the
//     backend has cluster CIDRs (the client is outside them), and keeps
//     the client's address when it has none.
//   - PodToClusterIP: a pod's connections to a cluster IP reach the
//     service's other pods with the pod's own address, masqueraded only
//     with MasqueradeAll.
//   - NotReadyEndpoint: an endpoint that turns not ready gets no new
//     connection after the next, incremental, sync.
//   - TerminatingFallback: serving terminating endpoints are used only
//     while no endpoint is ready.
//   - NoEndpointsRejects: TCP and UDP to a service without usable endpoints
//     are refused at once (within 250ms), not left to time out.
//   - SessionAffinity: with ClientIP affinity 30 connections of a client
//     reach one backend; with it turned off they spread again.
//   - TCPAndUDPSamePort: a TCP and a UDP service port of the same number
//     each reach their own endpoints.
//   - NodePort: TCP and UDP node ports answer at NodeIP():nodePort, and
//     masquerade (externalTrafficPolicy Cluster).
//   - NodeAddresses: a node port answers on each node address
//     NodePortAddresses allow (NodeIP and NodeIP2 when they hold no prefix
//     of the family), on no other, and never on loopback.
//   - ExternalTrafficPolicyLocal: external traffic to a node port reaches
//     only local endpoints, with the client's own address, and is dropped
//     (a timeout, not a refusal) when only remote ones exist; the cluster
//     IP keeps using all of them.
//   - LoadBalancerSourceRanges: a load-balancer IP admits ClientIP(), in
//     the ranges, drops ClientIP2(), and opens up when the ranges go.
//   - StaleUDPFlow: a UDP client that keeps its source port reaches the new
//     endpoint after its old one is removed, via cluster IP and node port.
//   - Cleanup: Cleanup leaves nothing of the backend (see
//     SuiteOptions.Leftovers), leaves foreign nft tables and iptables and
//     ip6tables chains alone, stops the traffic, and can run twice.
//   - Restart: a new backend with a new Tracker full-syncs (prev nil) a
//     different state on top of the old one's and converges; syncing an
//     unchanged snapshot, incrementally or in full, changes nothing.
//   - Field failures of kube-proxy, each named after its upstream issue
//     (scenarios_field.go): Kubernetes139628UDPScaleToZero,
//     Kubernetes96174UDPNodePortExternalIP (one-way UDP streams that keep
//     their source port reach the right endpoint after every transition,
//     scale to zero and back included), Kubernetes131765ExternalIPLocalFromPod
//     (pods reach an externalTrafficPolicy=Local external IP without a
//     local endpoint).
//
// Every scenario starts with foreign nft tables in the node (foreign.go:
// other families and features lbkit never writes) and fails unless each is
// listed byte for byte the same after the backend's Cleanup.
//
// # Variants
//
// A [Variant] is the address family and the options users set that change
// what a backend writes. Run runs every scenario in IPv4 and in IPv6 with
// the default options (subtests IPv4/<scenario>, IPv6/<scenario>), and,
// in each family, the scenarios an option affects again with it:
//
//   - NodePortAddresses (<family>/NodePortAddresses/<scenario>): node
//     ports restricted to the client link's prefix of each family, as a
//     dual-stack proxy passes one list to both; NodeIP is inside, NodeIP2
//     outside. NodePort, NodeAddresses, ExternalTrafficPolicyLocal,
//     LoadBalancerSourceRanges, StaleUDPFlow, Cleanup.
//   - OtherFamilyNodePortAddresses: only the other family's prefix, which
//     leaves this family unrestricted, as in kube-proxy. NodeAddresses,
//     StaleUDPFlow.
//   - NoClusterCIDRs: no pod ranges, so nothing is masqueraded for being
//     off-cluster and nothing short-circuits as pod traffic.
//     ClusterIPSpread, PodToClusterIP, NodePort,
//     ExternalTrafficPolicyLocal, Cleanup.
//   - MasqueradeAll: every cluster-IP connection is masqueraded, pods'
//     included (Network.MasqueradeAll). ClusterIPSpread, PodToClusterIP.
//
// The rule for listing a scenario under an option: its behaviour depends
// on that option (which addresses answer, what is masqueraded, which flows
// are cleared) or the option changes what the backend writes and removes
// (Cleanup). The others run once per family: every option combination is
// covered where it matters, and the matrix stays affordable.
//
// Every scenario first shows the backend working, so none passes for a
// backend that does nothing; the package's own tests run the suite, every
// variant, against a hand-written nftables ruleset, and that ruleset with
// one bug at a time (in IPv4; "does nothing" in IPv6 too), to show each
// scenario catching what it is about.
//
// # The network
//
// The network is package netlab's (Network, NetworkOptions and Pod here are
// its types under the same names; netlab imports no testing, so programs
// such as lbctl's demo use it directly). [NewNetwork] builds, for one
// test, a node namespace with a bridge of pod namespaces (each each serving TCP and UDP with [Network.Serve]
// and answering with its name and the client address it saw) and a client
// namespace on a veth. In IPv4 (the default):
//
//	client  10.100.0.2 and .3 ─ veth ─ node 10.100.0.1 (and 10.101.0.1), br0 10.244.1.1/24 ─ backends 10.244.1.10, .11, ...
//
// and with NetworkOptions.IPv6, the same namespaces with unique local
// addresses (duplicate address detection off, so they work at once):
//
//	client  fd00:100::2 and ::3 ─ veth ─ node fd00:100::1 (and fd00:101::1), br0 fd00:244:1::1/64 ─ backends fd00:244:1::a, ::b, ...
//
// The node forwards, routes the service range (10.96.0.0/16,
// fd00:96::/112) and the external range (10.97.0.0/16, fd00:97::/112;
// external and load-balancer IPs) onto its bridge, and has no route out:
// nothing sent in a Network leaves it. Bridge netfilter is on by default,
// as on a real node; ICMP errors are not rate-limited, so every refusal
// shows. Namespace names carry the process id and a counter, so parallel
// tests and test binaries never collide; everything is deleted when the
// test ends.
//
// # Running the suite against a backend
//
// The suite needs Linux, root and the "ip" and "nft" tools. Without them
// it skips, unless LBKIT_E2E=1 is set, which turns every missing
// requirement into a failure (see [Require]). A backend's conformance test
// is a few lines in its own package; the Factory configures the backend
// from the Network, so each variant runs with its options:
//
//	//go:build linux
//
//	package mybackend_test
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T, n *backendtest.Network) backends.Interface {
//			b, err := mybackend.New(mybackend.Options{
//				ClusterCIDRs:      n.ClusterCIDRs(),
//				NodePortAddresses: n.NodePortAddresses(),
//				NodeIPs:           n.NodeIPs(),
//			})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return b
//		}, backendtest.SuiteOptions{Parallel: true})
//	}
//
// and runs as root:
//
//	sudo LBKIT_E2E=1 go test -run TestConformance -v ./mybackend/
//
// The Factory and every method of the backend are called inside
// [Network.InNode], so the backend sees the node's namespace as its own.
// Scenario Cleanup finds what a backend leaves behind by comparing the
// node's nft, iptables-legacy, IPVS and ipset objects with those from
// before the backend was made; a backend with objects elsewhere supplies
// SuiteOptions.Leftovers. A backend that clears stale UDP flows itself sets
// SuiteOptions.DisableConntrack; one that proxies connections, and so
// never keeps a client's address, sets SuiteOptions.IgnoreSource. One that
// does not implement a feature yet names its scenario, or a variant
// ("IPv6", "NodePortAddresses", ...), in SuiteOptions.Skip, with the
// reason. When a scenario fails, the node's ruleset, iptables (or
// ip6tables) rules, IPVS table and conntrack table are logged.
package backendtest
