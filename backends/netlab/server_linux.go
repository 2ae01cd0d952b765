//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	v1 "k8s.io/api/core/v1"
)

// retryPause keeps a server loop from spinning on a persistent error.
const retryPause = 10 * time.Millisecond

// Serve starts a TCP and a UDP server on port in every backend. They answer
// with the backend's name, a space, the client's address as the backend
// sees it, and a newline ("b0 10.100.0.2:41234"): TCP on accept, then
// close; UDP to every datagram. A client thus learns which backend a load
// balancer chose, and whether its address reached it or was masqueraded.
//
// Servers listen on the wildcard address of the Network's family in their
// namespace, and live until the Network is torn down. Serving a port again is a no-op; failing to
// listen fails the test.
func (n *Network) Serve(t TB, port uint16) {
	t.Helper()
	if err := n.ServePort(port); err != nil {
		t.Fatalf("netlab: %v", err)
	}
}

// ServePort is Serve outside a test: it returns what went wrong.
func (n *Network) ServePort(port uint16) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fmt.Errorf("ServePort(%d) after the network was torn down", port)
	}
	if n.served[port] {
		return nil
	}
	for _, b := range n.pods {
		if err := n.serveBackend(b, port); err != nil {
			return fmt.Errorf("serve port %d in %s: %w", port, b.NS, err)
		}
	}
	n.served[port] = true
	return nil
}

// serveBackend opens both sockets inside b's namespace and starts their
// loops. The caller holds n.mu.
func (n *Network) serveBackend(b Pod, port uint16) error {
	tcp, udp, addr := "tcp4", "udp4", fmt.Sprintf("0.0.0.0:%d", port)
	if n.plan.family == v1.IPv6Protocol {
		tcp, udp, addr = "tcp6", "udp6", fmt.Sprintf("[::]:%d", port)
	}
	var (
		ln net.Listener
		pc net.PacketConn
	)
	err := inNamespace(b.NS, func() error {
		var lc net.ListenConfig
		var err error
		if ln, err = lc.Listen(context.Background(), tcp, addr); err != nil {
			return err
		}
		n.servers = append(n.servers, ln)
		if pc, err = lc.ListenPacket(context.Background(), udp, addr); err != nil {
			return err
		}
		n.servers = append(n.servers, pc)
		return nil
	})
	if err != nil {
		return err
	}
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		serveTCP(ln, b.Name)
	}()
	go func() {
		defer n.wg.Done()
		serveUDP(pc, b.Name)
	}()
	return nil
}

// serveTCP answers each connection until ln is closed. The write is tiny and
// the socket fresh, so it cannot block; the deadline is only a safeguard.
func serveTCP(ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(retryPause) // e.g. out of file descriptors
			continue
		}
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(reply(name, c.RemoteAddr()))
		c.Close()
	}
}

// serveUDP replies to every datagram until pc is closed.
func serveUDP(pc net.PacketConn, name string) {
	buf := make([]byte, 2048)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(retryPause)
			continue
		}
		pc.WriteTo(reply(name, from), from)
	}
}

// reply is a server's answer to a client at from.
func reply(name string, from net.Addr) []byte {
	var src netip.AddrPort
	switch a := from.(type) {
	case *net.TCPAddr:
		src = a.AddrPort()
	case *net.UDPAddr:
		src = a.AddrPort()
	}
	return []byte(name + " " + netip.AddrPortFrom(src.Addr().Unmap(), src.Port()).String() + "\n")
}
