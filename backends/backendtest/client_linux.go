//go:build linux

package backendtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// DialTCP connects from the client namespace to dst and returns the name the
// server answered with. src picks the source address (ClientIP or
// ClientIP2); the zero Addr means ClientIP. timeout bounds the whole
// exchange, on top of ctx; zero leaves it to ctx.
//
// A rejected connection gives an error for which IsRefused is true, a
// silently dropped one an error for which IsTimeout is true.
func (n *Network) DialTCP(ctx context.Context, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (string, error) {
	if !src.IsValid() {
		src = clientIP
	}
	return n.dialTCP(ctx, n.clientNS, src, dst, timeout)
}

// DialTCPFrom is DialTCP from another of this Network's namespaces: a
// backend's (a pod as client, for hairpin and pod-source tests) or the
// node's (locally generated traffic). The zero src lets the kernel choose.
// Namespaces outside this Network are refused, so a test cannot send
// traffic anywhere but into namespaces it made.
func (n *Network) DialTCPFrom(ns string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (string, error) {
	return n.dialTCP(context.Background(), ns, src, dst, timeout)
}

func (n *Network) dialTCP(ctx context.Context, ns string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (string, error) {
	if !n.owns(ns) {
		return "", fmt.Errorf("backendtest: namespace %q is not part of this network", ns)
	}
	ctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	if src.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	var c net.Conn
	err := inNamespace(ns, func() error {
		var err error
		c, err = d.DialContext(ctx, "tcp", dst.String())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("tcp %s -> %v in %s: %w", source(src), dst, ns, err)
	}
	defer c.Close()
	answer, err := await(ctx, c, func() ([]byte, error) {
		return io.ReadAll(io.LimitReader(c, maxAnswer))
	})
	if err != nil {
		return "", fmt.Errorf("tcp %v -> %v in %s: %w", c.LocalAddr(), dst, ns, err)
	}
	return answer, nil
}

// DialUDP sends one datagram from ClientIP:srcPort (0 = ephemeral) to dst
// and returns the name in the reply. The socket is connected, so an ICMP
// port unreachable shows as a refusal. SO_REUSEADDR lets tests reuse a
// fixed source port back to back: reusing one is how a client keeps hitting
// the same conntrack entry, as in stale-UDP-flow tests.
func (n *Network) DialUDP(ctx context.Context, srcPort uint16, dst netip.AddrPort, timeout time.Duration) (string, error) {
	ctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	src := netip.AddrPortFrom(clientIP, srcPort)
	d := net.Dialer{
		LocalAddr: net.UDPAddrFromAddrPort(src),
		Control:   reuseAddr,
	}
	var c net.Conn
	err := inNamespace(n.clientNS, func() error {
		var err error
		c, err = d.DialContext(ctx, "udp", dst.String())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("udp %v -> %v: %w", src, dst, err)
	}
	defer c.Close()
	answer, err := await(ctx, c, func() ([]byte, error) {
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return nil, err
		}
		buf := make([]byte, maxAnswer)
		k, err := c.Read(buf)
		return buf[:k], err
	})
	if err != nil {
		return "", fmt.Errorf("udp %v -> %v: %w", c.LocalAddr(), dst, err)
	}
	return answer, nil
}

// IsRefused reports whether err is an active refusal: a TCP reset, or an
// ICMP port unreachable (what `reject` sends by default in nftables and
// iptables). ICMP host or admin unreachables are not counted: the kernel
// reports them as EHOSTUNREACH, the same as a failed ARP lookup, which would
// make a broken topology look like a rejecting rule.
func IsRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// maxAnswer bounds what a client reads; answers are backend names.
const maxAnswer = 256

// withTimeout narrows ctx by timeout, if positive.
func withTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		return context.WithTimeout(ctx, timeout)
	}
	return context.WithCancel(ctx)
}

// await runs read on c under ctx's deadline and cancellation and returns
// the answer without its newline. When ctx ends first, its error is the one
// returned, so a cancellation is not mistaken for a timeout.
func await(ctx context.Context, c net.Conn, read func() ([]byte, error)) (string, error) {
	if deadline, ok := ctx.Deadline(); ok {
		c.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, err := read()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return "", fmt.Errorf("%w (%v)", cerr, err)
		}
		return "", err
	}
	answer := strings.TrimSpace(string(b))
	if answer == "" {
		return "", errors.New("empty answer")
	}
	return answer, nil
}

// reuseAddr sets SO_REUSEADDR before bind.
func reuseAddr(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}
