// Package check holds the checks of the values every backend's Spec has
// (prefixes, node addresses, the masquerade mark) and the error all of a
// Spec's or Options' checks return.
package check

import (
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/lbkit/lbkit/backends"
)

// Invalid returns an error wrapping backends.ErrInvalidConfig that says,
// after the backend's name, what is wrong.
func Invalid(backend, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", backends.ErrInvalidConfig, backend, fmt.Sprintf(format, args...))
}

// Addresses reports the first invalid address of addrs (Spec.NodeIPs) or
// prefix of lists (Spec.ClusterCIDRs, Spec.NodePortAddresses).
func Addresses(backend string, addrs []netip.Addr, lists ...[]netip.Prefix) error {
	for _, a := range addrs {
		if !a.IsValid() {
			return Invalid(backend, "invalid address %v in Spec.NodeIPs", a)
		}
	}
	for _, list := range lists {
		for _, p := range list {
			if !p.IsValid() {
				return Invalid(backend, "invalid prefix %v in Spec", p)
			}
		}
	}
	return nil
}

// Mark reports a masquerade mark that is not exactly one bit.
func Mark(backend string, mark uint32) error {
	if bits.OnesCount32(mark) != 1 {
		return Invalid(backend, "Spec.MasqueradeMark %#x is not one bit", mark)
	}
	return nil
}
