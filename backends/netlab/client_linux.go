//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DialTCP connects from the client namespace to dst and returns the name the
// server answered with. src picks the source address (ClientIP or
// ClientIP2); the zero Addr means ClientIP. timeout bounds the whole
// exchange, on top of ctx; zero leaves it to ctx.
//
// A rejected connection gives an error for which IsRefused is true, a
// silently dropped one an error for which IsTimeout is true.
func (n *Network) DialTCP(ctx context.Context, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (string, error) {
	a, err := n.DialTCPAnswer(ctx, src, dst, timeout)
	return a.Pod, err
}

// DialTCPAnswer is DialTCP returning the whole answer: the backend, and
// the source address it saw.
func (n *Network) DialTCPAnswer(ctx context.Context, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (Answer, error) {
	if !src.IsValid() {
		src = n.plan.clientIP
	}
	return n.dialTCP(ctx, n.clientNS, src, dst, timeout)
}

// DialTCPFrom is DialTCP from another of this Network's namespaces: a
// backend's (a pod as client, for hairpin and pod-source tests) or the
// node's (locally generated traffic). The zero src lets the kernel choose.
// Namespaces outside this Network are refused, so a test cannot send
// traffic anywhere but into namespaces it made.
func (n *Network) DialTCPFrom(ns string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (string, error) {
	a, err := n.dialTCP(context.Background(), ns, src, dst, timeout)
	return a.Pod, err
}

// DialTCPAnswerFrom is DialTCPFrom with the whole answer: which pod
// answered, and the source address it saw.
func (n *Network) DialTCPAnswerFrom(ctx context.Context, ns string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (Answer, error) {
	return n.dialTCP(ctx, ns, src, dst, timeout)
}

func (n *Network) dialTCP(ctx context.Context, ns string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (Answer, error) {
	if !n.owns(ns) {
		return Answer{}, fmt.Errorf("netlab: namespace %q is not part of this network", ns)
	}
	if err := ctx.Err(); err != nil {
		// A loopback connect can complete before anyone looks at ctx.
		return Answer{}, fmt.Errorf("tcp %s -> %v in %s: %w", source(src), dst, ns, err)
	}
	ctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	var fd int
	err := inNamespace(ns, func() error {
		var err error
		fd, err = startConnect(src, dst)
		return err
	})
	var c net.Conn
	if err == nil {
		c, err = finishConnect(ctx, fd)
	}
	if err != nil {
		return Answer{}, fmt.Errorf("tcp %s -> %v in %s: %w", source(src), dst, ns, err)
	}
	defer c.Close()
	answer, err := await(ctx, c, func() ([]byte, error) {
		return io.ReadAll(io.LimitReader(c, maxAnswer))
	})
	if err != nil {
		return Answer{}, fmt.Errorf("tcp %v -> %v in %s: %w", c.LocalAddr(), dst, ns, err)
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
	src := netip.AddrPortFrom(n.plan.clientIP, srcPort)
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
	return answer.Pod, nil
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

// await runs read on c under ctx's deadline and cancellation and parses
// the answer. When ctx ends first, its error is the one returned, so a
// cancellation is not mistaken for a timeout.
func await(ctx context.Context, c net.Conn, read func() ([]byte, error)) (Answer, error) {
	if deadline, ok := ctx.Deadline(); ok {
		c.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, err := read()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return Answer{}, fmt.Errorf("%w (%v)", cerr, err)
		}
		return Answer{}, err
	}
	return parseAnswer(string(b))
}

// connectPoll is how often finishConnect looks at a pending connection's
// recorded error.
const connectPoll = 5 * time.Millisecond

// startConnect opens a non-blocking TCP socket in the calling thread's
// namespace, binds it to src (when valid) and starts connecting to dst.
func startConnect(src netip.Addr, dst netip.AddrPort) (int, error) {
	family := unix.AF_INET
	if dst.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if src.IsValid() {
		if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(src, 0))); err != nil {
			unix.Close(fd)
			return -1, os.NewSyscallError("bind", err)
		}
	}
	if err := unix.Connect(fd, sockaddr(dst)); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return -1, os.NewSyscallError("connect", err)
	}
	return fd, nil
}

// finishConnect waits until the connection on fd is established, refused
// or ctx ends, and returns it as a net.Conn (fd is then owned by it, or
// closed). It also reads the error the kernel records without ending the
// attempt: in a Network the client, the node and the backends share one
// kernel, so an ICMP port unreachable can come back while the connect call
// still holds the socket, and TCP over IPv6 then keeps it only as a soft
// error and waits for the SYN's retransmission a second later. A client
// on another machine would have been refused at once; so is this one.
func finishConnect(ctx context.Context, fd int) (net.Conn, error) {
	fail := func(err error) (net.Conn, error) {
		unix.Close(fd)
		return nil, err
	}
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, int(connectPoll/time.Millisecond))
		if err != nil && err != unix.EINTR {
			return fail(os.NewSyscallError("poll", err))
		}
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return fail(os.NewSyscallError("getsockopt", err))
		}
		if soerr != 0 {
			return fail(os.NewSyscallError("connect", syscall.Errno(soerr)))
		}
		if n > 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return fail(fmt.Errorf("connect: %w", err))
		}
	}
	f := os.NewFile(uintptr(fd), "tcp")
	defer f.Close()
	return net.FileConn(f)
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	}
	return &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
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
