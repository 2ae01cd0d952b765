//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// UDPStream is a one-way UDP sender, as statsd or syslog clients are: from
// the client namespace, one fixed source address and port, a datagram to
// one destination every interval, without ever waiting for an answer. Its
// flow never idles, so a conntrack entry (or a proxy's flow) it hits is
// never timed out. The servers (Network.Serve) still answer each datagram;
// a goroutine reads those answers so a test can see where the stream lands.
type UDPStream struct {
	c    *net.UDPConn
	dst  netip.AddrPort
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	answers []string // backend names, in arrival order
	sendErr error    // the first failed send, for diagnostics
}

// StartUDPStream starts a stream from ClientIP:srcPort to dst, one datagram
// every interval, until Close. srcPort must not be 0: a fixed source port
// is the point.
func (n *Network) StartUDPStream(srcPort uint16, dst netip.AddrPort, interval time.Duration) (*UDPStream, error) {
	if srcPort == 0 || interval <= 0 {
		return nil, fmt.Errorf("netlab: StartUDPStream(%d, %v, %v): want a fixed source port and a positive interval", srcPort, dst, interval)
	}
	src := netip.AddrPortFrom(n.plan.clientIP, srcPort)
	var c *net.UDPConn
	err := inNamespace(n.clientNS, func() error {
		lc := net.ListenConfig{Control: reuseAddr}
		pc, err := lc.ListenPacket(context.Background(), "udp", src.String())
		if err != nil {
			return err
		}
		c = pc.(*net.UDPConn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("udp stream %v -> %v: %w", src, dst, err)
	}
	s := &UDPStream{c: c, dst: dst, stop: make(chan struct{})}
	s.wg.Add(2)
	go s.send(interval)
	go s.read()
	return s, nil
}

// send writes a datagram every interval. The socket is not connected, so
// ICMP errors (a rejecting rule) do not stop it: the sender, like a real
// one-way client, never learns about them.
func (s *UDPStream) send(interval time.Duration) {
	defer s.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	msg := []byte("stream\n")
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		if _, err := s.c.WriteToUDPAddrPort(msg, s.dst); err != nil {
			s.mu.Lock()
			if s.sendErr == nil {
				s.sendErr = err
			}
			s.mu.Unlock()
		}
	}
}

func (s *UDPStream) read() {
	defer s.wg.Done()
	buf := make([]byte, maxAnswer)
	for {
		k, _, err := s.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // an ICMP error reported on the socket
		}
		a, err := parseAnswer(string(buf[:k]))
		if err != nil {
			continue
		}
		s.mu.Lock()
		s.answers = append(s.answers, a.Pod)
		s.mu.Unlock()
	}
}

// Mark returns a position in the stream's answers: Since(mark) counts
// only those that arrive after it.
func (s *UDPStream) Mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.answers)
}

// Since tallies the answers that arrived after mark, by backend name.
func (s *UDPStream) Since(mark int) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := map[string]int{}
	for _, name := range s.answers[min(mark, len(s.answers)):] {
		got[name]++
	}
	return got
}

// WaitFor waits up to timeout for an answer from backend after mark, and
// reports whether one came.
func (s *UDPStream) WaitFor(mark int, backend string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if s.Since(mark)[backend] > 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(streamPoll)
	}
}

// streamPoll is how often WaitFor looks at the answers.
const streamPoll = 5 * time.Millisecond

// String describes the stream, for failure messages.
func (s *UDPStream) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := fmt.Sprintf("UDP stream %v -> %v (%d answers)", s.c.LocalAddr(), s.dst, len(s.answers))
	if s.sendErr != nil {
		d += fmt.Sprintf(", first send error: %v", s.sendErr)
	}
	return d
}

// Close stops the stream and waits for its goroutines.
func (s *UDPStream) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	err := s.c.Close()
	s.wg.Wait()
	return err
}
