package endpoints

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// PortEndpoints holds the merged endpoints of one port key.
type PortEndpoints struct {
	PortKey
	// Endpoints are sorted by address and port, one per address:port.
	Endpoints []Endpoint
}

// Merge combines the parsed slices of one service into the endpoints of each
// port key, for the node named node ("" = no node: nothing is local). The
// result is sorted by port name, then protocol, and is the same whatever the
// order of slices. Merge does not modify its input; the returned endpoints
// share hint lists with it.
func Merge(sl []*Slice, node string) []PortEndpoints {
	if len(sl) == 0 {
		return nil
	}
	if !slices.IsSortedFunc(sl, bySliceName) {
		sl = slices.Clone(sl)
		slices.SortFunc(sl, bySliceName)
	}

	var out []PortEndpoints
	var at map[PortKey]int // index in out, once there are many ports
	find := func(k PortKey) (int, bool) {
		if at != nil {
			i, ok := at[k]
			return i, ok
		}
		i := slices.IndexFunc(out, func(pe PortEndpoints) bool { return pe.PortKey == k })
		return i, i >= 0
	}
	for _, s := range sl {
		if s == nil {
			continue
		}
		for _, p := range s.Ports {
			pi, ok := find(p.PortKey)
			if !ok {
				out = append(out, PortEndpoints{PortKey: p.PortKey, Endpoints: make([]Endpoint, 0, len(s.Endpoints))})
				pi = len(out) - 1
				// A Service may have thousands of ports: beyond a few,
				// look them up in a map rather than a scan.
				if at == nil && len(out) > 8 {
					at = make(map[PortKey]int, len(out))
					for i := range out {
						at[out[i].PortKey] = i
					}
				} else if at != nil {
					at[p.PortKey] = pi
				}
			}
			for i := range s.Endpoints {
				se := &s.Endpoints[i]
				out[pi].Endpoints = append(out[pi].Endpoints, Endpoint{
					Addr:        netip.AddrPortFrom(se.Addr, p.Number),
					NodeName:    se.NodeName,
					Zone:        se.Zone,
					ZoneHints:   se.ZoneHints,
					NodeHints:   se.NodeHints,
					Ready:       se.Ready,
					Serving:     se.Serving,
					Terminating: se.Terminating,
					Local:       node != "" && se.NodeName == node,
				})
			}
		}
	}
	for i := range out {
		out[i].Endpoints = dedup(out[i].Endpoints)
	}
	slices.SortFunc(out, func(a, b PortEndpoints) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(string(a.Protocol), string(b.Protocol)))
	})
	return out
}

// dedup sorts eps by address and keeps one copy of each address: the most
// preferred, and among equals the first listed (slices are walked in name
// order). A stable sort keeps listing order among equals; no map is needed.
func dedup(eps []Endpoint) []Endpoint {
	slices.SortStableFunc(eps, func(a, b Endpoint) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		switch {
		case preferred(a, b):
			return -1
		case preferred(b, a):
			return 1
		}
		return 0
	})
	return slices.CompactFunc(eps, func(a, b Endpoint) bool { return a.Addr == b.Addr })
}

// Prefer reports whether Merge keeps copy a of an address:port over copy b,
// when b comes first (from a slice whose name sorts first, or earlier in the
// same slice). Tools that explain a merge (lbctl explain) use it to tell
// which slice's copy was kept.
func Prefer(a, b Endpoint) bool { return preferred(a, b) }

// preferred reports whether a later copy a of an address should replace the
// earlier copy b. As in kube-proxy, a copy that is not terminating beats a
// terminating one, whatever else either says: two copies of one address are
// an endpoint moving between slices, or a pod IP reused by a new pod while
// the old one terminates, and the new pod owns the address even before it is
// ready. kube-proxy decides nothing further (the copy seen last in map
// order wins; ParseSlice has already reduced the copies inside one slice to
// the one kube-proxy keeps), so lbkit goes on deterministically: ready
// beats not ready, serving beats not serving, local beats remote, and on a
// full tie the earlier copy, from the slice whose name sorts first, stays.
func preferred(a, b Endpoint) bool {
	if a.Terminating != b.Terminating {
		return !a.Terminating
	}
	if a.Ready != b.Ready {
		return a.Ready
	}
	if a.Serving != b.Serving {
		return a.Serving
	}
	if a.Local != b.Local {
		return a.Local
	}
	return false
}

func bySliceName(a, b *Slice) int {
	if a == nil || b == nil {
		return cmp.Compare(boolInt(a != nil), boolInt(b != nil))
	}
	return strings.Compare(a.Name, b.Name)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
