package backendtest

import (
	"github.com/lbkit/lbkit/backends/netlab"
)

// The namespace network the suite runs in is package netlab's (it does not
// import testing, so programs can use it); these names keep the suite's
// callers short.
type (
	// Network is netlab.Network.
	Network = netlab.Network
	// NetworkOptions is netlab.NetworkOptions.
	NetworkOptions = netlab.NetworkOptions
	// Pod is netlab.Pod: one pod namespace of a Network.
	Pod = netlab.Pod
	// Answer is netlab.Answer.
	Answer = netlab.Answer
	// UDPStream is netlab.UDPStream.
	UDPStream = netlab.UDPStream
)

// NewNetwork is netlab.NewNetwork: a Network torn down at the end of the
// test.
func NewNetwork(t netlab.TB, opts NetworkOptions) *Network { return netlab.NewNetwork(t, opts) }

// IsTimeout is netlab.IsTimeout.
func IsTimeout(err error) bool { return netlab.IsTimeout(err) }

// IsRefused is netlab.IsRefused.
func IsRefused(err error) bool { return netlab.IsRefused(err) }
