// Package ipvs programs a servicemap.Snapshot into the kernel's IPVS load
// balancer, the way kube-proxy's IPVS mode does.
//
// # What it creates
//
// In the network namespace it runs in, a [Backend] owns three things:
//
//   - A dummy link (Spec.Interface, "lbkit-ipvs0") carrying every
//     virtual address as a /32 (or /128): cluster IPs, external IPs and
//     load-balancer IPs, so the node accepts traffic to them and IPVS sees
//     it in its LOCAL_IN hook. An address the node already has on another
//     link (an external IP that is a node address) is not bound again.
//   - IPVS virtual servers, one per address, port and protocol: the
//     cluster IP and service port; each external and load-balancer IP and
//     service port; each node address and node port. Real servers are the
//     endpoints the traffic uses, as topology.Result says: the cluster IP
//     uses the endpoints of the internal traffic policy (Cluster or
//     Local), the other addresses those of the external one. Forwarding is
//     masquerade (NAT), weight 1. ClientIP session affinity is persistence
//     (-p timeout, one-address netmask).
//   - An nftables table (Spec.Table, "lbkit-ipvs") for what IPVS cannot
//     do, described below.
//
// Node-port virtual servers live on the node's addresses: Spec.NodeIPs,
// or, when empty, every non-loopback, non-link-local address of the
// namespace's links but the dummy one, read at each Sync; either way
// filtered by Spec.NodePortAddresses. Like every virtual server on a
// node address, they are not bound to the dummy link.
//
// # Ownership
//
// IPVS has no tables, comments or owners: every virtual server of a
// namespace sits in one list. The rule by which lbkit decides what is its
// own, in Sync and in Cleanup:
//
//	A virtual server is lbkit's if its address is on lbkit's dummy link,
//	or it is on a node address (a node port, or an external IP that is
//	the node's) and lbkit's desired state names it, or lbkit's nftables
//	table records it as created by lbkit (the set node-address-servers).
//
// lbkit never deletes or changes a virtual server it cannot show it owns
// by this rule; anyone else's, on other addresses or on node addresses
// and ports lbkit does not use, is left alone. The record exists because a
// virtual server on a node address outlives its service's presence in the
// desired state: without it, a service deleted while lbkit was down (or
// before Cleanup) would leave its node ports behind. lbkit adds a virtual server
// to the record before creating it and removes it from the record only
// once the virtual server is gone, so a crash between the two steps leaves
// a record without a virtual server, never the reverse. Two consequences:
// another program's virtual server on an address lbkit binds, or on a
// node address and port that a service uses, is taken over; and a
// Backend with a different Interface or Table sees nothing of this one.
//
// # Syncing
//
// A full sync (prev nil, prev not the snapshot applied last, the first
// sync, the one after a failure, or one that finds the node's addresses
// changed) plans every service port and compares with what the kernel
// reports: it lists every virtual server and the dummy link's addresses,
// lists the real servers of every virtual server it wants, rewrites the
// nftables table in one transaction, and adds, updates or deletes only
// what differs; so a restarted process converges.
//
// An incremental sync (prev the snapshot applied last; the Backend is a
// backends.ChangesSyncer, so it takes the Runner's Diff) costs what
// changed. The Backend keeps, per service port, what that port contributes
// (its virtual servers with their real servers, the addresses it binds,
// its set elements), with counts for what ports share (an address bound by
// several ports or services, the hairpin element of an endpoint several
// services use) and, per virtual server, the ports asking for it. It takes
// out the contributions of the removed and updated ports, and of any port
// that wins or loses a virtual server because of them, puts in the new
// ones, and applies only the result: one nftables transaction with the
// elements that come and go (none when none do), the addresses whose count
// went from or to zero, and the virtual servers that changed, whose real
// servers it reconciles by listing only theirs. It lists no other virtual
// server and not the link's addresses, and trusts that the kernel still
// holds what the last sync applied: a change made behind lbkit's back is
// repaired by the next full sync (with a Runner, at the latest its
// periodic resync). IPVS changes are not transactional: a failing change
// is reported (wrapping backends.ErrApply) after the others are applied,
// and the next sync is a full one.
//
// A real server that is no longer wanted is removed at once when it has no
// connections. A TCP real server that still has connections (active or
// inactive, as IPVS counts them) is set to weight 0 instead: it gets no new
// connections and keeps the ones it has, until a later Sync finds it
// drained and removes it (the Runner's periodic resync provides that
// Sync): every sync, incremental ones too, looks again at the virtual
// servers that have draining real servers, until they are done. UDP and
// SCTP real servers are removed at once, as in kube-proxy: with
// expire_nodest_conn their flows move on the next packet. A virtual server
// that is no longer wanted is deleted at once, with its real servers.
//
// Render returns the desired virtual and real servers as the text
// `ipvsadm -Sn` prints; it is what `lbctl render` shows for this backend.
//
// What is programmed and how are kept apart: a [Spec] (link, schedulers,
// CIDRs, node addresses, table, mark) is the description, pure data that
// [Render] and [New] both take, and New refuses an invalid one with
// backends.ErrInvalidConfig (see [Spec.Validate]); [Options] (logger, and
// the IPVS, Host and NFT seams) only say how New's Backend programs it.
// Spec, Render and the planner behind them build and test on every OS;
// only the Backend, which talks to the kernel, is Linux-only.
//
// # The netfilter half
//
// One table, six base chains with fixed rules, and named sets and a map
// that Sync fills; no per-service chain or rule:
//
//   - nat-prerouting and nat-output (nat, priority -111) short-circuit an
//     externalTrafficPolicy=Local port (backends.PortPlan.ShortCircuit):
//     traffic from the pods (sources in Spec.ClusterCIDRs) and from the
//     node to its node ports, external IPs and load-balancer IPs is
//     translated to the cluster IP and port (map short-circuit-to), whose
//     virtual server balances over every endpoint of the cluster, as
//     kube-proxy's other modes do (kubernetes#131765); the node's own
//     traffic is marked for masquerade (set short-circuit). A port whose
//     internalTrafficPolicy is Local too has no such cluster IP, and
//     keeps its external route.
//   - prerouting and output (filter, priority -110) set the masquerade mark
//     (Spec.MasqueradeMark, 0x4000) on traffic to a cluster IP from a
//     source outside Spec.ClusterCIDRs, or from any source with
//     Spec.MasqueradeAll (set cluster-ips), and on
//     traffic to an external address whose service has externalTrafficPolicy
//     Cluster (set external-masq: the chosen endpoint may be on another
//     node, whose reply must come back through this one).
//   - postrouting (nat) masquerades marked packets, and hairpin traffic
//     (set hairpin: a pod that IPVS sent to itself).
//   - input and output (filter, priority -110) reject new connections to a
//     service port without any endpoint (set no-endpoints), drop those
//     whose endpoints are all elsewhere (set no-local-endpoints: for
//     example externalTrafficPolicy Local without a local endpoint), and
//     input drops traffic to a load-balancer IP from outside its
//     loadBalancerSourceRanges (sets firewall, firewall-allow; a range that
//     holds a node address also admits the load-balancer IP itself as a
//     source, as in kube-proxy).
//
// Priority -110 puts the filter chains before IPVS, which hooks LOCAL_OUT at
// -98 and LOCAL_IN at 98: they see the virtual address a client used, not
// the real server IPVS picked. Masquerading IPVS traffic needs
// net.ipv4.vs.conntrack=1, so that netfilter tracks the connections IPVS
// makes. Virtual addresses are all local (on the dummy link), so no
// forward chain is needed. knftables runs the nft binary; New fails with
// backends.ErrNotSupported without it.
//
// # Sysctls
//
// Every full Sync writes, in its namespace, what kube-proxy's IPVS mode
// sets:
//
//	net.ipv4.vs.conntrack=1                 netfilter sees IPVS connections (masquerade)
//	net.ipv4.vs.expire_nodest_conn=1        a removed real server's flows move on their next packet
//	net.ipv4.vs.expire_quiescent_template=1 persistence to a weight-0 server ends
//	net.ipv4.conf.all.arp_ignore=1          the node does not answer ARP for the
//	net.ipv4.conf.all.arp_announce=2        dummy link's addresses on other links
//
// # Scheduler per service: the annotation lbkit.io/ipvs-scheduler
//
// Every virtual server uses Spec.Scheduler (rr unless set: wrr, lc, wlc,
// sh, mh, ...). A Snapshot carries no annotations, so a per-service choice
// comes through Spec.SchedulerFor, which a proxy fills from the
// annotation [SchedulerAnnotation] ("lbkit.io/ipvs-scheduler") with a small
// map kept by the Service informer it already runs (the example of
// Spec, "schedulerFor", shows it whole with a fake clientset).
//
// SchedulerFor must be safe to call from the goroutine that runs Sync. An
// unknown name is logged and the default used. Changing only the annotation
// does not change the Snapshot, so the new scheduler is applied by the next
// Sync of any kind (with a Runner, at the latest its periodic resync): with
// SchedulerFor set, an incremental sync asks it about every service port
// (a function call each, nothing asked of the kernel) and syncs those
// whose answer changed. The virtual server is updated in place, keeping
// its connections.
//
// # Namespaces and requirements
//
// New opens its netlink sockets (IPVS, rtnetlink) in the network namespace
// of the calling thread; Sync and Cleanup must run in the same namespace,
// since nft and /proc/sys act in the calling thread's. The kernel needs
// IPVS (ip_vs and the scheduler modules; a kernel without modprobe loads
// them beforehand), nf_conntrack, nf_nat, nf_tables with the nft_ct,
// nft_masq, nft_nat, nft_chain_nat and nft_reject modules, and dummy. New
// returns an error wrapping backends.ErrNotSupported when the kernel has no
// IPVS: github.com/moby/ipvs, which this package uses, reports success for
// every request on such a kernel, so New resolves IPVS's generic netlink
// family itself and lists the virtual servers once.
//
// # Tests
//
// Unit tests run on Linux without root with a fake IPVS handle and host
// (Options.IPVS, Options.Host) and knftables' fake; Render's golden tests
// run on every OS. The tests with real packets
// (the backendtest conformance suite, lc, sh, hairpin: TestIPVSConformance
// and its neighbours in kernel_linux_test.go) need a
// kernel with IPVS. Where the host has none, TestIPVSInVM runs the whole
// package inside a qemu VM (software emulation) booting Debian's
// linux-image-amd64 with a minimal initramfs, built by vmtest/run.sh:
//
//	sudo go test -run TestIPVSInVM -v ./backends/ipvs/   # or: sudo backends/ipvs/vmtest/run.sh
//
// See vm_linux_test.go and kernel_linux_test.go for when each test runs,
// skips or fails (LBKIT_E2E=1, LBKIT_IN_VM=1).
package ipvs
