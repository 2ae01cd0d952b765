package endpoints

import (
	"net/netip"
	"slices"
	"strings"
)

// Endpoint is one backend of one service port, as the node being resolved for
// sees it. Values are immutable: the hint slices may be shared between
// endpoints and snapshots and MUST NOT be modified.
type Endpoint struct {
	// Addr is the endpoint's first address and the port's number.
	Addr netip.AddrPort
	// NodeName and Zone are copied from the EndpointSlice ("" when unset).
	NodeName string
	Zone     string
	// ZoneHints and NodeHints are the slice's hints.forZones and
	// hints.forNodes names, sorted and without duplicates; nil when absent.
	ZoneHints []string
	NodeHints []string

	Ready       bool
	Serving     bool
	Terminating bool
	// Local is true when NodeName is the node being resolved for.
	Local bool
}

// String returns the endpoint's address and port, e.g. "10.0.0.1:8080".
func (e Endpoint) String() string { return e.Addr.String() }

// HasZoneHint reports whether the endpoint is hinted for zone.
func (e Endpoint) HasZoneHint(zone string) bool { return contains(e.ZoneHints, zone) }

// HasNodeHint reports whether the endpoint is hinted for node.
func (e Endpoint) HasNodeHint(node string) bool { return contains(e.NodeHints, node) }

// Equal reports whether two endpoints are identical in every field.
func (e Endpoint) Equal(o Endpoint) bool {
	return e.Addr == o.Addr && e.NodeName == o.NodeName && e.Zone == o.Zone &&
		e.Ready == o.Ready && e.Serving == o.Serving && e.Terminating == o.Terminating &&
		e.Local == o.Local && slices.Equal(e.ZoneHints, o.ZoneHints) && slices.Equal(e.NodeHints, o.NodeHints)
}

// EqualLists reports whether two endpoint lists hold equal endpoints in the
// same order.
func EqualLists(a, b []Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// Compare orders endpoints by address, then port.
func Compare(a, b Endpoint) int { return a.Addr.Compare(b.Addr) }

// contains searches a short sorted list; hint lists hold a handful of names.
func contains(sorted []string, s string) bool {
	_, found := slices.BinarySearchFunc(sorted, s, strings.Compare)
	return found
}
