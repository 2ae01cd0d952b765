// Package nftables is the lbkit backend that programs Services into the
// kernel's nftables: tables of lbkit's own (family ip or ip6 after the
// snapshot), written over netlink, or through the nft binary with
// sigs.k8s.io/knftables (Options.Transport). Services are spread over
// Spec.Shards tables ("lbkit-00" to "lbkit-15" by default; one table
// named "lbkit" with Shards 1), each a complete ruleset for its share.
//
// What is programmed and how are apart: a [Spec] describes the tables (names,
// shards, pod CIDRs, node-port addresses, mark), [Options] say how to reach
// the kernel (transport, batch size, logger, and the test seam NFT). [New]
// takes both and refuses contradictions with backends.ErrInvalidConfig.
//
// [Render] returns the desired tables as deterministic `nft -f` text, a pure
// function of a servicemap.Snapshot and a [Spec] that builds on every
// platform (only kernel I/O is Linux-only); [Backend] applies the same
// model (never a second generator): Sync sends only what changed since the
// snapshot it applied last, or reconciles every table against what the
// kernel holds when it has no such record (first sync, after a failure, or
// when prev is not its last snapshot). A Backend is used by one goroutine at
// a time. New's errors wrap backends.ErrPermission (no CAP_NET_ADMIN) or
// backends.ErrNotSupported (no nftables); Sync's wrap backends.ErrApply (the
// change was not made; the next Sync is a full one), and with it
// ErrPermission, ErrNotSupported or ErrTimeout when one is the cause.
// [Backend.SyncChanges] takes a Diff its caller computed, and
// [Backend.Drifted] tells cheaply whether lbkit's tables were flushed or
// deleted from outside. Cleanup deletes lbkit's ip and ip6 tables, whatever
// shard count made them, and nothing else.
//
// # Semantics
//
// The decision for each service port comes from [backends.PortPlan], the
// one every lbkit data plane consumes: which chain (cluster or local)
// cluster-IP and external traffic go to, or whether they are rejected or
// dropped; the short-circuit; which traffic is masqueraded; the firewall and
// its allowed sources; the affinity timeout. This package only writes it as
// objects. The decisions are kube-proxy's (nftables mode, v1.37); which
// endpoints a port uses is topology.Categorize's business. Ports without
// any usable endpoint are rejected on every address, node ports included;
// cluster-IP traffic of an internalTrafficPolicy=Local port without a local
// endpoint is dropped, and so is external traffic of an
// externalTrafficPolicy=Local port without one, except that pods
// (Spec.ClusterCIDRs) and the node itself short-circuit to the cluster
// endpoints. Cluster-IP traffic from outside the pod CIDRs (all of it with
// Spec.MasqueradeAll) and Cluster-policy external traffic are
// masqueraded; so is a pod that reaches
// itself through a service (hairpin). Load-balancer source ranges are
// checked before DNAT. Node ports answer on local addresses (or those in
// Spec.NodePortAddresses), never on loopback.
//
// One deliberate difference: kube-proxy checks locally generated traffic for
// "no endpoints" before DNAT, which drops the node's own short-circuited
// connections to an externalTrafficPolicy=Local address without local
// endpoints; lbkit checks output after DNAT (filter-output-post-dnat), so
// those connections work, as they do in kube-proxy's iptables mode.
// A new connection to a cluster IP on a port the service does not have is
// rejected (cluster-ips-check), as kube-proxy does, and one to an address
// of the snapshot's service CIDRs that no Service holds is dropped, rather
// than routed out of the node. The drop sits in base chains one priority
// after the rejects, so that with several tables no table's drop pre-empts
// another table's reject.
//
// # Ruleset shape, chosen for scale
//
// Each choice below was measured at 10,000 services and more; the figures
// are in the README ("Backends", "Performance", "Scale"):
//
//   - No anonymous sets or maps per service (binding thousands of them in
//     one transaction stalls the kernel) and no chain per endpoint.
//   - Dispatch goes through named verdict maps: service-ips (address .
//     protocol . port), service-nodeports, no-endpoint-services and
//     no-endpoint-nodeports (checked from the filter hooks, where reject is
//     allowed), firewall-ips. Per service port there are at most four
//     chains: svc- (cluster endpoints), local- (local endpoints), ext-
//     (external traffic) and fw- (source ranges, with a named interval set).
//   - An endpoint is chosen by a cascade: of n rules, rule i matches with
//     probability 1/(n-i) and the last always (see endpointPick). One named
//     data map per service (dnat to numgen random mod n map @m) loaded far
//     slower, nearly all of it in the kernel.
//   - Hairpin masquerading needs no per-endpoint rule: postrouting matches
//     the named set hairpin of (address . address) pairs, filled with the
//     endpoints on this node only.
//   - Several tables (Spec.Shards), each a whole ruleset for the
//     services hashed to it. A commit that adds a dnat or jump rule, or a
//     verdict-map element, makes the kernel re-validate every chain
//     reachable from the base chains of that table, so a smaller table
//     commits faster; a packet meets every table's base chains.
//   - Transactions go over netlink (netlinkWriter): the batch is written
//     directly, one sendmsg, no acknowledgement per message, errors traced
//     to their operation; nft would first dump the chains and sets of every
//     table. A transaction is a list of typed operations on the model
//     (objects.go): rules are typed values (rule.go), sets carry their
//     key's field types and each element the set it goes in (its key
//     stays nft text, encoded by those types). They are written as nft
//     text for Render and the nft transport and as netlink messages here;
//     tests load every golden case both ways and compare the kernel's
//     bytecode.
//     TransportNFT keeps the nft path.
//   - Listing is over netlink too: one dump of the family's chains for all
//     tables, one of each table's sets, and the shared containers' elements
//     decoded here (nft would print every rule).
//   - An incremental sync costs what changed: Diff and one transaction per
//     table it touches; the model keeps no copy of the endpoint rules' text
//     (they are generated from the snapshot when written) and its small
//     values are allocated in slabs.
//   - Tables are independent: each transaction is all-or-nothing, and a
//     failure makes the next sync a full one.
//
// # Names
//
// Per port objects are named <prefix><namespace>/<name>[/<port>]/<protocol>
// cut to 48 characters, then "-" and 8 characters of a hash of the
// identity: stable, unique, and under 64 characters. Affinity sets are
// "aff-<hash>-<endpoint ip>-<port>", the hash covering the timeout, which a
// set cannot change in place.
package nftables
