//go:build linux

package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
)

// networkSeq numbers the Networks of this process. With the process id it
// makes namespace names unique, even for parallel tests in one binary and
// for several test binaries at once.
var networkSeq atomic.Uint64

// validPrefix keeps namespace names to characters that are safe as file
// names under /run/netns and in command lines.
var validPrefix = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$`)

// commandTimeout bounds each setup command, so a wedged tool fails the test
// instead of hanging it.
const commandTimeout = 30 * time.Second

// NewNetwork builds a namespace network and registers a t.Cleanup that tears
// it down (stops servers, deletes the namespaces, whose veths go with them),
// also when the test fails. A setup error fails the test with the output of
// the command that failed. Call Require(t, "ip") first.
//
// The topology, all addresses inside namespaces the Network owns, in IPv4
// (the default) and in IPv6 (NetworkOptions.IPv6):
//
//	client ns  eth0 10.100.0.2/24, 10.100.0.3/24, default via 10.100.0.1
//	           eth0 fd00:100::2/64, fd00:100::3/64, default via fd00:100::1
//	   | veth
//	node ns    10.100.0.1/24 and 10.101.0.1/32 on the client link
//	           (fd00:100::1/64 and fd00:101::1/128); forwarding on,
//	           ICMP errors not rate-limited;
//	           br0 10.244.1.1/24 (fd00:244:1::1/64); routes 10.96.0.0/16
//	           and 10.97.0.0/16 (fd00:96::/112, fd00:97::/112) dev br0 for
//	           services and external IPs; no default route
//	   | one veth per backend, bridge port with hairpin on
//	backend i  eth0 10.244.1.(10+i)/24, default via 10.244.1.1
//	           eth0 fd00:244:1::(a+i)/64, default via fd00:244:1::1
//
// IPv6 addresses skip duplicate address detection (nodad, and accept_dad=0
// for the link-local ones), so a Network is usable at once. Replies from
// backends return through the node, so forwarded traffic needs no
// masquerade. The node has no route out, so nothing sent in a Network can
// reach the host or beyond.
func NewNetwork(t TB, opts NetworkOptions) *Network {
	t.Helper()
	n, err := Open(opts)
	if n != nil {
		t.Cleanup(func() {
			if err := n.Close(); err != nil {
				t.Errorf("netlab: tear down network: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	return n
}

// Open builds a Network outside a test (lbctl demo uses it); the caller
// must Close it. On error the returned Network, if not nil, holds what was
// half built and must be closed too.
func Open(opts NetworkOptions) (*Network, error) {
	count := opts.Pods
	if count == 0 {
		count = defaultBackends
	}
	if count < 0 || count > maxBackends {
		return nil, fmt.Errorf("NetworkOptions.Pods = %d, want 1..%d", opts.Pods, maxBackends)
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = defaultPrefix
	}
	if !validPrefix.MatchString(prefix) {
		return nil, fmt.Errorf("NetworkOptions.Prefix %q must match %s", prefix, validPrefix)
	}

	seq := networkSeq.Add(1)
	base := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq)
	v := opts.Variant
	v.IPv6 = v.IPv6 || opts.IPv6
	n := &Network{
		plan:     planFor(v.IPv6),
		variant:  v,
		nodeNS:   base + "-node",
		clientNS: base + "-client",
		served:   make(map[uint16]bool),
	}
	for i := range count {
		name := fmt.Sprintf("b%d", i)
		n.pods = append(n.pods, Pod{
			Name: name,
			NS:   base + "-" + name,
			IP:   HostIn(n.plan.clusterCIDR, firstBackendHost+i),
		})
	}
	if err := n.build(seq, !opts.DisableBridgeNetfilter); err != nil {
		return n, fmt.Errorf("build network %s: %w", base, err)
	}
	return n, nil
}

// Close stops the servers and deletes the namespaces (their links go with
// them). It is safe to call more than once.
func (n *Network) Close() error { return n.close() }

// build creates the namespaces and links, with one ip process per
// namespace (ip -batch). Veths are created directly inside the namespaces,
// so no interface ever appears in the host namespace; their node-side
// names still carry seq to read well in dumps.
func (n *Network) build(seq uint64, bridgeNetfilter bool) error {
	all := []string{n.nodeNS, n.clientNS}
	for _, b := range n.pods {
		all = append(all, b.NS)
	}
	var create []string
	for _, ns := range all {
		create = append(create, "netns add "+ns)
	}
	// Recorded before the batch runs, so a half-built Network still
	// deletes what exists (deleting a missing one only logs an error).
	n.created = append(n.created, all...)
	if err := runBatch("", create); err != nil {
		return err
	}
	if n.plan.family == v1.IPv6Protocol {
		for _, ns := range all {
			if err := inNamespace(ns, noDAD); err != nil {
				return fmt.Errorf("%s: %w", ns, err)
			}
		}
	}

	p := n.plan
	nodad := ""
	if p.family == v1.IPv6Protocol {
		nodad = " nodad"
	}
	node := []string{
		"link set lo up",
		// Without snooping the bridge floods multicast, neighbour
		// solicitations included, whatever queriers it has seen.
		"link add br0 type bridge mcast_snooping 0",
		"addr add " + prefixOf(p.bridgeIP, p.clusterCIDR) + " dev br0" + nodad,
		"link set br0 up",
		"route add " + p.serviceCIDR.String() + " dev br0",
		"route add " + p.externalCIDR.String() + " dev br0",
	}
	for _, b := range n.pods {
		port := vethName(seq, b.Name)
		node = append(node,
			"link add "+port+" type veth peer name eth0 netns "+b.NS,
			"link set "+port+" master br0",
			// Lets a frame leave by the port it came in on: a backend
			// reaching itself through a VIP (with masquerade).
			"link set "+port+" type bridge_slave hairpin on",
			"link set "+port+" up",
		)
	}
	uplink := vethName(seq, "cl")
	node = append(node,
		"link add "+uplink+" type veth peer name eth0 netns "+n.clientNS,
		"addr add "+prefixOf(p.nodeIP, p.clientLink)+" dev "+uplink+nodad,
		"addr add "+netip.PrefixFrom(p.nodeIP2, p.nodeIP2.BitLen()).String()+" dev "+uplink+nodad,
		"link set "+uplink+" up",
	)
	if err := runBatch("-n "+n.nodeNS, node); err != nil {
		return err
	}
	for _, b := range n.pods {
		if err := runBatch("-n "+b.NS, []string{
			"link set lo up",
			"addr add " + prefixOf(b.IP, p.clusterCIDR) + " dev eth0" + nodad,
			"link set eth0 up",
			"route add default via " + p.bridgeIP.String(),
		}); err != nil {
			return err
		}
	}
	if err := runBatch("-n "+n.clientNS, []string{
		"link set lo up",
		"addr add " + prefixOf(p.clientIP, p.clientLink) + " dev eth0" + nodad,
		"addr add " + prefixOf(p.clientIP2, p.clientLink) + " dev eth0" + nodad,
		"link set eth0 up",
		"route add default via " + p.nodeIP.String(),
	}); err != nil {
		return err
	}
	return n.InNode(func() error { return nodeSysctls(p.family == v1.IPv6Protocol, bridgeNetfilter) })
}

// noDAD turns duplicate address detection off in the calling thread's
// namespace, for good: a link-local address stays tentative for a second
// or two, and until then the kernel sends no neighbour solicitation for
// traffic it forwards. It must stay off: a carrier change reaches addrconf
// later (linkwatch), and would start detection then.
func noDAD() error {
	for _, conf := range []string{"all", "default"} {
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+conf+"/accept_dad", []byte("0"), 0); err != nil {
			return fmt.Errorf("disable IPv6 duplicate address detection: %w", err)
		}
	}
	return nil
}

// nodeSysctls runs inside the node namespace, where /proc/sys/net shows the
// node's own settings.
func nodeSysctls(ipv6, bridgeNetfilter bool) error {
	forward, brnf := "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/bridge/bridge-nf-call-iptables"
	ratelimit := "/proc/sys/net/ipv4/icmp_ratelimit"
	if ipv6 {
		forward, brnf = "/proc/sys/net/ipv6/conf/all/forwarding", "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
		ratelimit = "/proc/sys/net/ipv6/icmp/ratelimit"
	}
	if err := os.WriteFile(forward, []byte("1"), 0); err != nil {
		return fmt.Errorf("enable forwarding in node: %w", err)
	}
	// Rejections are ICMP errors, which the kernel limits per client: a
	// few in a row (a scenario's refusals, a redirect drawing on the same
	// budget) and the next one was seen dropped instead (Debian's 6.1,
	// IPv6). Scenarios check every refusal.
	if err := os.WriteFile(ratelimit, []byte("0"), 0); err != nil {
		return fmt.Errorf("lift the ICMP rate limit in node: %w", err)
	}
	// See NetworkOptions.DisableBridgeNetfilter. The file exists only
	// when the kernel has br_netfilter.
	if _, err := os.Stat(brnf); err != nil {
		if bridgeNetfilter {
			return fmt.Errorf("bridge netfilter needs br_netfilter (or NetworkOptions.DisableBridgeNetfilter): %w", err)
		}
		return nil
	}
	value := "0"
	if bridgeNetfilter {
		value = "1"
	}
	if err := os.WriteFile(brnf, []byte(value), 0); err != nil {
		return fmt.Errorf("set %s=%s in node: %w", brnf, value, err)
	}
	return nil
}

// close stops the servers first (their sockets keep namespaces alive), then
// deletes the namespaces. It is safe to call on a half-built Network.
func (n *Network) close() error {
	n.mu.Lock()
	n.closed = true
	servers := n.servers
	n.servers = nil
	n.mu.Unlock()
	for _, s := range servers {
		s.Close()
	}
	n.wg.Wait()

	n.mu.Lock()
	created := n.created
	n.created = nil
	n.mu.Unlock()
	var del []string
	for i := len(created) - 1; i >= 0; i-- {
		del = append(del, "netns del "+created[i])
	}
	if len(del) == 0 {
		return nil
	}
	// -force goes on past a namespace that is already gone.
	return runBatch("-force", del)
}

// runBatch runs the ip tool once for commands, one per line, with the
// global options opts (for example "-n", ns). It stops at the first
// failing command unless opts has "-force"; the error carries the tool's
// output, which names the command.
func runBatch(opts string, commands []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	args := append(strings.Fields(opts), "-batch", "-")
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(strings.Join(commands, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s\ncommands:\n%s", strings.Join(args, " "), err,
			strings.TrimSpace(string(out)), strings.Join(commands, "\n"))
	}
	return nil
}

// vethName names a node-side veth: at most 15 bytes (2 + 8 + 1 + 4), the
// kernel's limit for interface names.
func vethName(seq uint64, peer string) string {
	return fmt.Sprintf("lb%x-%s", uint32(seq), peer)
}

// prefixOf formats addr with the length of the subnet it is on, as ip wants.
func prefixOf(addr netip.Addr, subnet netip.Prefix) string {
	return netip.PrefixFrom(addr, subnet.Bits()).String()
}
