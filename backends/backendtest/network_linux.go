//go:build linux

package backendtest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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
// The topology, all addresses inside namespaces the Network owns:
//
//	client ns  eth0 10.100.0.2/24, 10.100.0.3/24, default via 10.100.0.1
//	   | veth
//	node ns    10.100.0.1/24 on the client link; ip_forward=1;
//	           br0 10.244.1.1/24; routes 10.96.0.0/16 (services) and
//	           10.97.0.0/16 (external IPs) dev br0; no default route
//	   | one veth per backend, bridge port with hairpin on
//	backend i  eth0 10.244.1.(10+i)/24, default via 10.244.1.1
//
// Replies from backends return through the node, so forwarded traffic needs
// no masquerade. The node has no route out, so nothing sent in a Network can
// reach the host or beyond.
func NewNetwork(t testing.TB, opts NetworkOptions) *Network {
	t.Helper()
	n, err := Open(opts)
	if n != nil {
		t.Cleanup(func() {
			if err := n.Close(); err != nil {
				t.Errorf("backendtest: tear down network: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("backendtest: %v", err)
	}
	return n
}

// Open builds a Network outside a test (lbctl demo uses it); the caller
// must Close it. On error the returned Network, if not nil, holds what was
// half built and must be closed too.
func Open(opts NetworkOptions) (*Network, error) {
	count := opts.Backends
	if count == 0 {
		count = defaultBackends
	}
	if count < 0 || count > maxBackends {
		return nil, fmt.Errorf("NetworkOptions.Backends = %d, want 1..%d", opts.Backends, maxBackends)
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
	n := &Network{
		nodeNS:   base + "-node",
		clientNS: base + "-client",
		served:   make(map[uint16]bool),
	}
	for i := range count {
		name := fmt.Sprintf("b%d", i)
		n.backends = append(n.backends, Backend{
			Name: name,
			NS:   base + "-" + name,
			IP:   netip.AddrFrom4([4]byte{10, 244, 1, byte(firstBackendHost + i)}),
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

// build creates the namespaces and links. Veths are created directly inside
// the namespaces (ip -n), so no interface ever appears in the host
// namespace; their node-side names still carry seq to read well in dumps.
func (n *Network) build(seq uint64, bridgeNetfilter bool) error {
	all := []string{n.nodeNS, n.clientNS}
	for _, b := range n.backends {
		all = append(all, b.NS)
	}
	for _, ns := range all {
		if err := runIP("netns", "add", ns); err != nil {
			return err
		}
		n.created = append(n.created, ns)
		if err := runIP("-n", ns, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}

	node := n.nodeNS
	cmds := [][]string{
		{"-n", node, "link", "add", "br0", "type", "bridge"},
		{"-n", node, "addr", "add", prefixOf(bridgeIP, clusterCIDR), "dev", "br0"},
		{"-n", node, "link", "set", "br0", "up"},
		{"-n", node, "route", "add", serviceCIDR.String(), "dev", "br0"},
		{"-n", node, "route", "add", externalCIDR.String(), "dev", "br0"},
	}
	for _, b := range n.backends {
		port := vethName(seq, b.Name)
		cmds = append(cmds,
			[]string{"-n", node, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", b.NS},
			[]string{"-n", node, "link", "set", port, "master", "br0"},
			// Lets a frame leave by the port it came in on: a backend
			// reaching itself through a VIP (with masquerade).
			[]string{"-n", node, "link", "set", port, "type", "bridge_slave", "hairpin", "on"},
			[]string{"-n", node, "link", "set", port, "up"},
			[]string{"-n", b.NS, "addr", "add", prefixOf(b.IP, clusterCIDR), "dev", "eth0"},
			[]string{"-n", b.NS, "link", "set", "eth0", "up"},
			[]string{"-n", b.NS, "route", "add", "default", "via", bridgeIP.String()},
		)
	}
	uplink := vethName(seq, "cl")
	cmds = append(cmds,
		[]string{"-n", node, "link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", n.clientNS},
		[]string{"-n", node, "addr", "add", prefixOf(nodeIP, clientLink), "dev", uplink},
		[]string{"-n", node, "link", "set", uplink, "up"},
		[]string{"-n", n.clientNS, "addr", "add", prefixOf(clientIP, clientLink), "dev", "eth0"},
		[]string{"-n", n.clientNS, "addr", "add", prefixOf(clientIP2, clientLink), "dev", "eth0"},
		[]string{"-n", n.clientNS, "link", "set", "eth0", "up"},
		[]string{"-n", n.clientNS, "route", "add", "default", "via", nodeIP.String()},
	)
	for _, args := range cmds {
		if err := runIP(args...); err != nil {
			return err
		}
	}
	return n.InNode(func() error { return nodeSysctls(bridgeNetfilter) })
}

// nodeSysctls runs inside the node namespace, where /proc/sys/net shows the
// node's own settings.
func nodeSysctls(bridgeNetfilter bool) error {
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0); err != nil {
		return fmt.Errorf("enable ip_forward in node: %w", err)
	}
	// See NetworkOptions.DisableBridgeNetfilter. The file exists only
	// when the kernel has br_netfilter.
	const brnf = "/proc/sys/net/bridge/bridge-nf-call-iptables"
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
		return fmt.Errorf("set bridge-nf-call-iptables=%s in node: %w", value, err)
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

	var errs []error
	for i := len(n.created) - 1; i >= 0; i-- {
		if err := runIP("netns", "del", n.created[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// runIP runs the ip tool and returns an error carrying its output.
func runIP(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
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
