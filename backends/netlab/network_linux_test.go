//go:build linux

package netlab_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/netlab"
)

const (
	servePort  = 8080
	closedPort = 8081
	timeout    = 2 * time.Second
)

// TestNetwork checks the harness itself, in both families: addressing,
// servers, clients from every kind of namespace, and the refused/timeout
// distinction the backend tests rely on.
func TestNetwork(t *testing.T) {
	backendtest.Require(t, "ip")
	t.Run("IPv4", func(t *testing.T) { testNetwork(t, plans[false]) })
	t.Run("IPv6", func(t *testing.T) { testNetwork(t, plans[true]) })
}

// plan is what a Network of one family must show.
type plan struct {
	ipv6                                                  bool
	backends                                              []string
	nodeIP, nodeIP2, clientIP, clientIP2, bridge          string
	clusterCIDR, serviceCIDR, externalCIDR, vip, external string
	forward, brnf                                         string
}

var plans = map[bool]plan{
	false: {
		backends: []string{"b0 10.244.1.10", "b1 10.244.1.11", "b2 10.244.1.12"},
		nodeIP:   "10.100.0.1", nodeIP2: "10.101.0.1", clientIP: "10.100.0.2", clientIP2: "10.100.0.3",
		bridge: "10.244.1.1/24", clusterCIDR: "10.244.1.0/24", serviceCIDR: "10.96.0.0/16", externalCIDR: "10.97.0.0/16",
		vip: "10.96.0.10", external: "10.97.0.1",
		forward: "/proc/sys/net/ipv4/ip_forward", brnf: "bridge-nf-call-iptables",
	},
	true: {
		ipv6:     true,
		backends: []string{"b0 fd00:244:1::a", "b1 fd00:244:1::b", "b2 fd00:244:1::c"},
		nodeIP:   "fd00:100::1", nodeIP2: "fd00:101::1", clientIP: "fd00:100::2", clientIP2: "fd00:100::3",
		bridge: "fd00:244:1::1/64", clusterCIDR: "fd00:244:1::/64", serviceCIDR: "fd00:96::/112", externalCIDR: "fd00:97::/112",
		vip: "fd00:96::a", external: "fd00:97::1",
		forward: "/proc/sys/net/ipv6/conf/all/forwarding", brnf: "bridge-nf-call-ip6tables",
	},
}

func testNetwork(t *testing.T, p plan) {
	n := netlab.NewNetwork(t, netlab.NetworkOptions{Pods: 3, IPv6: p.ipv6})
	n.Serve(t, servePort)
	n.Serve(t, servePort) // idempotent
	ctx := context.Background()
	backends := n.Pods()

	t.Run("addressing", func(t *testing.T) {
		var got []string
		for _, b := range backends {
			got = append(got, b.Name+" "+b.IP.String())
			if !n.ClusterCIDR().Contains(b.IP) {
				t.Errorf("%s: %v outside ClusterCIDR %v", b.Name, b.IP, n.ClusterCIDR())
			}
			if !strings.HasSuffix(b.NS, "-"+b.Name) {
				t.Errorf("%s: namespace %q does not end in its name", b.Name, b.NS)
			}
		}
		if diff := cmp.Diff(p.backends, got); diff != "" {
			t.Errorf("backends (-want +got):\n%s", diff)
		}
		for _, c := range []struct{ name, got, want string }{
			{"NodeIP", n.NodeIP().String(), p.nodeIP},
			{"NodeIP2", n.NodeIP2().String(), p.nodeIP2},
			{"ClientIP", n.ClientIP().String(), p.clientIP},
			{"ClientIP2", n.ClientIP2().String(), p.clientIP2},
			{"ClusterCIDR", n.ClusterCIDR().String(), p.clusterCIDR},
			{"ServiceCIDR", n.ServiceCIDR().String(), p.serviceCIDR},
			{"ExternalCIDR", n.ExternalCIDR().String(), p.externalCIDR},
			{"ClusterCIDRs", fmt.Sprint(n.ClusterCIDRs()), "[" + p.clusterCIDR + "]"},
			{"NodePortAddresses", fmt.Sprint(n.NodePortAddresses()), "[]"},
			{"Variant", n.Variant().String(), map[bool]string{false: "IPv4", true: "IPv6"}[p.ipv6]},
		} {
			if c.got != c.want {
				t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
			}
		}
		prefix := "lbkt-" + strconv.Itoa(os.Getpid()) + "-"
		for _, ns := range []string{n.NodeNS(), n.ClientNS()} {
			if !strings.HasPrefix(ns, prefix) {
				t.Errorf("namespace %q lacks prefix %q", ns, prefix)
			}
		}
	})

	t.Run("tcp from client to each backend", func(t *testing.T) {
		for _, b := range backends {
			got, err := n.DialTCP(ctx, netip.Addr{}, netip.AddrPortFrom(b.IP, servePort), timeout)
			if err != nil || got != b.Name {
				t.Errorf("DialTCP %v = %q, %v; want %q", b.IP, got, err, b.Name)
			}
		}
		// The answer names the source the backend saw: without rules, the
		// client's own address.
		a, err := n.DialTCPAnswer(ctx, n.ClientIP2(), netip.AddrPortFrom(backends[0].IP, servePort), timeout)
		if err != nil || a.Pod != "b0" || a.Source.Addr() != n.ClientIP2() {
			t.Errorf("DialTCPAnswer from %v = %+v, %v; want b0 seeing %v", n.ClientIP2(), a, err, n.ClientIP2())
		}
	})

	t.Run("node answers on both its addresses", func(t *testing.T) {
		// Nothing listens on the node: a refusal shows the address is
		// the node's and reachable from the client.
		for _, ip := range n.NodeIPs() {
			if _, err := n.DialTCP(ctx, netip.Addr{}, netip.AddrPortFrom(ip, closedPort), timeout); !netlab.IsRefused(err) {
				t.Errorf("DialTCP %v: err = %v, want refused by the node", ip, err)
			}
		}
	})

	t.Run("udp with a fixed source port twice", func(t *testing.T) {
		dst := netip.AddrPortFrom(backends[1].IP, servePort)
		for i := range 2 {
			got, err := n.DialUDP(ctx, 40000, dst, timeout)
			if err != nil || got != "b1" {
				t.Errorf("DialUDP #%d = %q, %v; want b1", i, got, err)
			}
		}
		got, err := n.DialUDP(ctx, 0, dst, timeout)
		if err != nil || got != "b1" {
			t.Errorf("DialUDP ephemeral = %q, %v; want b1", got, err)
		}
	})

	t.Run("closed port is refused quickly", func(t *testing.T) {
		dst := netip.AddrPortFrom(backends[0].IP, closedPort)
		start := time.Now()
		_, err := n.DialTCP(ctx, netip.Addr{}, dst, timeout)
		if !netlab.IsRefused(err) || netlab.IsTimeout(err) {
			t.Errorf("DialTCP closed port: err = %v, want refused and not timeout", err)
		}
		if d := time.Since(start); d > timeout/4 {
			t.Errorf("refusal took %v", d)
		}
		_, err = n.DialUDP(ctx, 0, dst, timeout)
		if !netlab.IsRefused(err) {
			t.Errorf("DialUDP closed port: err = %v, want refused", err)
		}
	})

	t.Run("unanswered dial times out", func(t *testing.T) {
		// Without rules a VIP or an external IP leads nowhere: the node
		// routes it onto the bridge, where nobody answers ARP for it.
		for _, vip := range []netip.AddrPort{
			netip.AddrPortFrom(netip.MustParseAddr(p.vip), 80),
			netip.AddrPortFrom(netip.MustParseAddr(p.external), 80),
		} {
			start := time.Now()
			_, err := n.DialTCP(ctx, netip.Addr{}, vip, 300*time.Millisecond)
			if !netlab.IsTimeout(err) || netlab.IsRefused(err) {
				t.Errorf("DialTCP %v: err = %v, want timeout and not refused", vip, err)
			}
			if d := time.Since(start); d > timeout {
				t.Errorf("timeout took %v", d)
			}
			_, err = n.DialUDP(ctx, 0, vip, 300*time.Millisecond)
			if !netlab.IsTimeout(err) {
				t.Errorf("DialUDP %v: err = %v, want timeout", vip, err)
			}
		}
	})

	t.Run("cancelled context is not a timeout", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := n.DialTCP(cctx, netip.Addr{}, netip.AddrPortFrom(backends[0].IP, servePort), timeout)
		if err == nil || netlab.IsTimeout(err) {
			t.Errorf("DialTCP with cancelled ctx: err = %v, want a non-timeout error", err)
		}
	})

	t.Run("tcp from node and from a backend", func(t *testing.T) {
		dst := netip.AddrPortFrom(backends[2].IP, servePort)
		for _, ns := range []string{n.NodeNS(), backends[0].NS, n.ClientNS()} {
			got, err := n.DialTCPFrom(ns, netip.Addr{}, dst, timeout)
			if err != nil || got != "b2" {
				t.Errorf("DialTCPFrom %s = %q, %v; want b2", ns, got, err)
			}
		}
		if _, err := n.DialTCPFrom("not-ours", netip.Addr{}, dst, timeout); err == nil {
			t.Errorf("DialTCPFrom a foreign namespace succeeded")
		}
	})

	t.Run("spread", func(t *testing.T) {
		got, err := n.Spread(ctx, netip.AddrPortFrom(backends[1].IP, servePort), 5, timeout)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]int{"b1": 5}, got); diff != "" {
			t.Errorf("Spread (-want +got):\n%s", diff)
		}
		got, err = n.Spread(ctx, netip.AddrPortFrom(backends[1].IP, closedPort), 3, timeout)
		if !netlab.IsRefused(err) {
			t.Errorf("Spread to a closed port: err = %v, want refused", err)
		}
		if diff := cmp.Diff(map[string]int{"": 3}, got); diff != "" {
			t.Errorf("Spread to a closed port (-want +got):\n%s", diff)
		}
	})

	t.Run("second client address is the source", func(t *testing.T) {
		// A listener in the node namespace sees the client's source
		// address, which checks InNode and DialTCP's src together.
		var ln net.Listener
		err := n.InNode(func() error {
			var err error
			ln, err = net.Listen("tcp", netip.AddrPortFrom(n.NodeIP(), 9000).String())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		peers := make(chan string, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				peers <- err.Error()
				return
			}
			peers <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().String()
			c.Write([]byte("node\n"))
			c.Close()
		}()
		got, err := n.DialTCP(ctx, n.ClientIP2(), netip.AddrPortFrom(n.NodeIP(), 9000), timeout)
		if err != nil || got != "node" {
			t.Errorf("DialTCP to node = %q, %v; want node", got, err)
		}
		if peer := <-peers; peer != n.ClientIP2().String() {
			t.Errorf("node saw source %s, want %s", peer, n.ClientIP2())
		}
	})

	t.Run("node settings", func(t *testing.T) {
		fam := map[bool]string{false: "-4", true: "-6"}[p.ipv6]
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"cat", p.forward}, "1"},
			{[]string{"cat", "/proc/sys/net/bridge/" + p.brnf}, "1"},
			{[]string{"ip", "-br", "addr", "show", "br0"}, p.bridge},
			{[]string{"ip", fam, "route", "show", n.ServiceCIDR().String()}, "dev br0"},
			{[]string{"ip", fam, "route", "show", n.ExternalCIDR().String()}, "dev br0"},
			{[]string{"ip", "-d", "link", "show", "master", "br0"}, "hairpin on"},
		} {
			out, err := n.NodeExec(c.args[0], c.args[1:]...)
			if err != nil || !strings.Contains(out, c.want) {
				t.Errorf("%s = %q, %v; want it to contain %q", strings.Join(c.args, " "), out, err, c.want)
			}
		}
		// Isolation: nothing routes out of the node.
		out, err := n.NodeExec("ip", fam, "route", "show", "default")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("node default route = %q, %v; want none", out, err)
		}
		if _, err := n.NodeExec("false"); err == nil {
			t.Errorf("NodeExec false: no error")
		}
	})

	t.Run("conntrack sees node flows", func(t *testing.T) {
		backendtest.Require(t, "conntrack", "nft")
		// Conntrack in a namespace starts once a rule needs it.
		table, family := "lbkt_conntrack_probe", map[bool]string{false: "ip", true: "ip6"}[p.ipv6]
		if out, err := n.NodeExec("nft", "add table "+family+" "+table+"; add chain "+family+" "+table+" probe { type filter hook forward priority 0; ct state new counter; }"); err != nil {
			t.Fatalf("nft: %v %s", err, out)
		}
		defer n.NodeExec("nft", "delete", "table", family, table)
		if _, err := n.DialUDP(ctx, 40001, netip.AddrPortFrom(backends[0].IP, servePort), timeout); err != nil {
			t.Fatal(err)
		}
		out, err := n.Conntrack("-L", "-f", map[bool]string{false: "ipv4", true: "ipv6"}[p.ipv6], "-p", "udp", "--orig-src", n.ClientIP().String(), "--orig-port-src", "40001")
		if err != nil || !strings.Contains(out, "dst="+backends[0].IP.String()) {
			t.Errorf("conntrack -L = %q, %v; want the flow to %v", out, err, backends[0].IP)
		}
	})
}

// TestNetworkParallel builds Networks side by side in one process: their
// names, links and identical addresses must not collide.
func TestNetworkParallel(t *testing.T) {
	backendtest.Require(t, "ip")
	var (
		mu    sync.Mutex
		names = map[string]bool{}
	)
	t.Run("group", func(t *testing.T) {
		for _, sub := range []string{"a", "b", "c"} {
			t.Run(sub, func(t *testing.T) {
				t.Parallel()
				n := netlab.NewNetwork(t, netlab.NetworkOptions{Pods: 2})
				n.Serve(t, servePort)
				for _, b := range n.Pods() {
					got, err := n.DialTCP(context.Background(), netip.Addr{}, netip.AddrPortFrom(b.IP, servePort), timeout)
					if err != nil || got != b.Name {
						t.Errorf("DialTCP %v = %q, %v; want %q", b.IP, got, err, b.Name)
					}
				}
				mu.Lock()
				defer mu.Unlock()
				for _, ns := range append([]string{n.NodeNS(), n.ClientNS()}, n.Pods()[0].NS) {
					if names[ns] {
						t.Errorf("namespace %q used twice", ns)
					}
					names[ns] = true
				}
			})
		}
	})
	if len(names) != 9 {
		t.Errorf("got %d distinct namespaces, want 9", len(names))
	}
}

// TestNetworkTeardown checks that a Network leaves no namespace behind.
func TestNetworkTeardown(t *testing.T) {
	backendtest.Require(t, "ip")
	var all []string
	t.Run("build", func(t *testing.T) {
		n := netlab.NewNetwork(t, netlab.NetworkOptions{Pods: 1, Prefix: "lbkt-td"})
		n.Serve(t, servePort)
		all = append(all, n.NodeNS(), n.ClientNS(), n.Pods()[0].NS)
		for _, ns := range all {
			if _, err := os.Stat("/run/netns/" + ns); err != nil {
				t.Errorf("namespace %s missing while in use: %v", ns, err)
			}
		}
	})
	for _, ns := range all {
		if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
			t.Errorf("namespace %s left behind (stat: %v)", ns, err)
		}
	}
	if len(all) != 3 {
		t.Errorf("got %d namespaces, want 3", len(all))
	}
}

// TestNetworkRequire checks Require's skip-or-fail rule with a recording TB.
func TestNetworkRequire(t *testing.T) {
	const tool = "lbkit-no-such-tool"
	for _, c := range []struct {
		e2e        string
		skip, fail bool
	}{
		{e2e: "", skip: true},
		{e2e: "1", fail: true},
	} {
		t.Setenv("LBKIT_E2E", c.e2e)
		rec := &recordingTB{TB: t}
		backendtest.Require(rec, tool)
		if rec.skipped != c.skip || rec.failed != c.fail || !strings.Contains(rec.msg, tool) {
			t.Errorf("LBKIT_E2E=%q: skipped=%v failed=%v msg=%q; want skipped=%v failed=%v naming %s",
				c.e2e, rec.skipped, rec.failed, rec.msg, c.skip, c.fail, tool)
		}
	}
}

// recordingTB records Skip and Fatal instead of stopping the test.
type recordingTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordingTB) Helper()                      {}
func (r *recordingTB) Skip(args ...any)             { r.skipped, r.msg = true, fmt.Sprint(args...) }
func (r *recordingTB) Fatal(args ...any)            { r.failed, r.msg = true, fmt.Sprint(args...) }
func (r *recordingTB) Skipf(f string, args ...any)  { r.Skip(fmt.Sprintf(f, args...)) }
func (r *recordingTB) Fatalf(f string, args ...any) { r.Fatal(fmt.Sprintf(f, args...)) }

// TestNetworkBridgeNetfilter shows what bridge netfilter (on unless
// NetworkOptions.DisableBridgeNetfilter) is for: a backend reaching another
// backend through a VIP, no masquerade.
func TestNetworkBridgeNetfilter(t *testing.T) {
	backendtest.Require(t, "ip", "nft")
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("BridgeNetfilter=%v", on), func(t *testing.T) {
			t.Parallel()
			n := netlab.NewNetwork(t, netlab.NetworkOptions{Pods: 2, DisableBridgeNetfilter: !on})
			n.Serve(t, servePort)
			b := n.Pods()
			want := map[bool]string{false: "0", true: "1"}[on]
			if out, err := n.NodeExec("cat", "/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil || strings.TrimSpace(out) != want {
				t.Errorf("bridge-nf-call-iptables = %q, %v; want %s", out, err, want)
			}
			vip := netip.MustParseAddrPort("10.96.0.10:80")
			rule := fmt.Sprintf("add table ip lbkt_probe; add chain ip lbkt_probe pre { type nat hook prerouting priority -100; ip daddr %v tcp dport %d dnat to %v; }",
				vip.Addr(), vip.Port(), netip.AddrPortFrom(b[1].IP, servePort))
			if out, err := n.NodeExec("nft", rule); err != nil {
				t.Fatalf("nft: %v %s", err, out)
			}
			got, err := n.DialTCPFrom(b[0].NS, netip.Addr{}, vip, 500*time.Millisecond)
			if on && (err != nil || got != b[1].Name) {
				t.Errorf("b0 -> VIP = %q, %v; want %s", got, err, b[1].Name)
			}
			if !on && !netlab.IsTimeout(err) {
				t.Errorf("b0 -> VIP = %q, %v; want a timeout (reply bridged past conntrack)", got, err)
			}
		})
	}
}
