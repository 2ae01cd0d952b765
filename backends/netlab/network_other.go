//go:build !linux

package netlab

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// errNotLinux is what every namespace operation returns off Linux.
var errNotLinux = errors.New("netlab: namespace networks need Linux")

// NewNetwork fails the test: namespace networks need Linux. Call Require
// first to skip instead.
func NewNetwork(t TB, opts NetworkOptions) *Network {
	t.Helper()
	t.Fatal(errNotLinux)
	return nil
}

// Open fails: namespace networks need Linux.
func Open(opts NetworkOptions) (*Network, error) { return nil, errNotLinux }

// Off Linux the methods below exist so callers compile; each one fails.

func (n *Network) Close() error                { return errNotLinux }
func (n *Network) ServePort(port uint16) error { return errNotLinux }

func (n *Network) InNode(f func() error) error                          { return errNotLinux }
func (n *Network) NodeExec(name string, args ...string) (string, error) { return "", errNotLinux }
func (n *Network) Conntrack(args ...string) (string, error)             { return "", errNotLinux }
func (n *Network) Serve(t TB, port uint16)                              { t.Helper(); t.Fatal(errNotLinux) }

func (n *Network) DialTCP(ctx context.Context, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (string, error) {
	return "", errNotLinux
}

func (n *Network) DialTCPAnswer(ctx context.Context, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (Answer, error) {
	return Answer{}, errNotLinux
}

func (n *Network) DialTCPFrom(ns string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (string, error) {
	return "", errNotLinux
}

func (n *Network) DialTCPAnswerFrom(ctx context.Context, ns string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (Answer, error) {
	return Answer{}, errNotLinux
}

func (n *Network) DialUDP(ctx context.Context, srcPort uint16, dst netip.AddrPort, timeout time.Duration) (string, error) {
	return "", errNotLinux
}

// IsRefused is always false off Linux, where no dial happens.
func IsRefused(err error) bool { return false }
