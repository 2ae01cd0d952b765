package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// Spread makes count TCP connections from ClientIP to dst, one after the
// other, and tallies them by the answering backend's name. Failed
// connections are counted under "". The error is the first failure, and
// only when every connection failed: a partial failure is a result to
// assert on, not an error.
func (n *Network) Spread(ctx context.Context, dst netip.AddrPort, count int, timeout time.Duration) (map[string]int, error) {
	tally := make(map[string]int)
	var first error
	for range count {
		name, err := n.DialTCP(ctx, netip.Addr{}, dst, timeout)
		if err != nil {
			if first == nil {
				first = err
			}
			name = ""
		}
		tally[name]++
	}
	if count > 0 && tally[""] == count {
		return tally, first
	}
	return tally, nil
}

// Answer is what a backend's server replies (see Network.Serve).
type Answer struct {
	// Pod is the name of the backend that answered, e.g. "b0".
	Pod string
	// Source is the client address the backend saw: the client's own, or
	// a node address when the load balancer masqueraded the connection.
	Source netip.AddrPort
}

// parseAnswer reads "name address:port" with optional surrounding space.
func parseAnswer(s string) (Answer, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Answer{}, errors.New("empty answer")
	}
	a := Answer{Pod: f[0]}
	if len(f) > 1 {
		src, err := netip.ParseAddrPort(f[1])
		if err != nil {
			return a, fmt.Errorf("answer %q: %w", s, err)
		}
		a.Source = src
	}
	return a, nil
}

// IsTimeout reports whether err means no answer came in time: a deadline or
// timeout passed, as when a packet is silently dropped.
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// source formats a source address for errors; the zero Addr is the
// kernel's choice.
func source(src netip.Addr) string {
	if !src.IsValid() {
		return "*"
	}
	return src.String()
}
