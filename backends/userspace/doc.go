// Package userspace is an lbkit backend that proxies Services in this
// process: an L4 proxy for TCP and UDP that serves cluster IPs, external
// IPs, load-balancer IPs and node ports with sockets of its own, and
// forwards each connection (TCP) or flow (UDP) to the endpoint a
// picker.Picker chooses, with the kernel backends' decisions
// (backends.PortPlan). It is what a service mesh or a node without a
// usable kernel load balancer runs, and it passes the same real-packet
// conformance suite (backends/backendtest) as the kernel backends.
//
// # How it serves
//
// The virtual addresses go on a link the backend owns (Options.Link, a
// dummy link, or an empty bridge where the kernel has no dummy type), so
// the node accepts traffic to them as its own. Every frontend whose service
// has a usable endpoint gets a socket; a frontend without one gets none,
// so the kernel refuses it at once (a TCP reset, an ICMP port unreachable),
// as the kernel backends' REJECT does. Node ports listen on the node's
// addresses (Options.NodeIPs, or every address of its other links),
// restricted by NodePortAddresses, never on loopback.
//
// What sockets cannot express goes in one small nftables table
// (Options.Table): dropping instead of refusing (an
// internalTrafficPolicy=Local cluster IP without a local endpoint; an
// externalTrafficPolicy=Local address without one, for clients that are
// neither pods nor the node), and load-balancer source ranges.
//
// TCP connections are spliced both ways, half-closes passed on. A UDP
// flow is a client address: its first datagram picks the endpoint, later
// ones follow it, replies come back from the frontend's address, and the
// flow ends after Options.UDPIdleTimeout idle or, at the next sync, when
// its endpoint is no longer one the client may use (the counterpart of
// clearing stale conntrack entries). An endpoint that turns terminating
// gets no new connection; established ones run until they close.
//
// # Differences from the kernel backends
//
// Endpoints see the proxy's address (the node's), not the client's: the
// proxy ends the client's connection and opens its own. Node ports and
// virtual addresses answer only for families and addresses the proxy
// listens on. Sync reconciles the link and the table with the kernel in
// full each time (prev is not needed: the proxy's own state is in the
// process). Close stops serving as a killed process would (sockets gone,
// link and table left); Cleanup removes everything.
//
// [Render] describes, as text, what a Backend serves for a snapshot.
package userspace
