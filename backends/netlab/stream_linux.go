//go:build linux

package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// ServeEcho starts a line echo server on TCP port in every backend: each
// line a client sends comes back prefixed with the backend's name and a
// space ("b0 hello"), on a connection that stays open until the client
// closes it. Tests of long-lived connections (graceful termination, stale
// TCP flows) use it with DialStream.
func (n *Network) ServeEcho(t TB, port uint16) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		t.Fatalf("netlab: ServeEcho(%d) after the network was torn down", port)
	}
	for _, b := range n.pods {
		var ln net.Listener
		err := inNamespace(b.NS, func() error {
			var err error
			ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
			return err
		})
		if err != nil {
			t.Fatalf("netlab: echo on port %d in %s: %v", port, b.NS, err)
		}
		n.servers = append(n.servers, ln)
		name := b.Name
		n.wg.Go(func() { serveEcho(ln, name) })
	}
}

func serveEcho(ln net.Listener, name string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(retryPause)
			continue
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := fmt.Fprintf(c, "%s %s", name, line); err != nil {
					return
				}
			}
		}()
	}
}

// Stream is a long-lived TCP connection from the client namespace, to an
// echo server (ServeEcho) behind some frontend.
type Stream struct {
	c net.Conn
	r *bufio.Reader
}

// DialStream opens a Stream from ClientIP to dst.
func (n *Network) DialStream(ctx context.Context, dst netip.AddrPort, timeout time.Duration) (*Stream, error) {
	var c net.Conn
	err := inNamespace(n.clientNS, func() error {
		var err error
		c, err = (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", dst.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &Stream{c: c, r: bufio.NewReader(c)}, nil
}

// Ask sends one line and returns the name of the backend that echoed it.
// An error means the connection no longer works: reset, or no answer
// within timeout.
func (s *Stream) Ask(line string, timeout time.Duration) (string, error) {
	s.c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(s.c, "%s\n", line); err != nil {
		return "", err
	}
	reply, err := s.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	var name, echoed string
	if _, err := fmt.Sscanf(reply, "%s %s", &name, &echoed); err != nil || echoed != line {
		return "", fmt.Errorf("echo of %q: %q", line, reply)
	}
	return name, nil
}

// Close closes the stream.
func (s *Stream) Close() error { return s.c.Close() }
