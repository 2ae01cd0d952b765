package backendtest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
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
