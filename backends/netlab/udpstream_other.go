//go:build !linux

package netlab

import (
	"net/netip"
	"time"
)

// UDPStream is a one-way UDP sender; off Linux none can start.
type UDPStream struct{}

func (n *Network) StartUDPStream(srcPort uint16, dst netip.AddrPort, interval time.Duration) (*UDPStream, error) {
	return nil, errNotLinux
}

func (s *UDPStream) Mark() int                                                    { return 0 }
func (s *UDPStream) Since(mark int) map[string]int                                { return nil }
func (s *UDPStream) WaitFor(mark int, backend string, timeout time.Duration) bool { return false }
func (s *UDPStream) String() string                                               { return "UDP stream (not on Linux)" }
func (s *UDPStream) Close() error                                                 { return errNotLinux }
