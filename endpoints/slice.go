package endpoints

import (
	"fmt"
	"net/netip"
	"slices"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// PortKey identifies a service port by the name and protocol that a Service
// port and its EndpointSlice ports share.
type PortKey struct {
	Name     string
	Protocol v1.Protocol
}

// Port is one usable port of an EndpointSlice.
type Port struct {
	PortKey
	Number uint16
}

// Slice is an EndpointSlice reduced to what a proxy needs, parsed once.
// It is immutable.
type Slice struct {
	Namespace string
	Name      string
	// Service is the value of the kubernetes.io/service-name label.
	Service   string
	Ports     []Port
	Endpoints []SliceEndpoint
}

// SliceEndpoint is one endpoint of a Slice, before a port is attached.
type SliceEndpoint struct {
	Addr      netip.Addr
	NodeName  string
	Zone      string
	ZoneHints []string
	NodeHints []string

	Ready       bool
	Serving     bool
	Terminating bool
}

// ParseSlice reads an EndpointSlice for a proxy of the given IP family
// (v1.IPv4Protocol or v1.IPv6Protocol). It returns nil, with a warning, for a
// slice that must be ignored as a whole. Values inside a usable slice that
// cannot be used (a port without a number, an unknown protocol, an address
// that does not parse or is of the other family) are skipped with a warning.
// ParseSlice does not modify es and does not keep references to its
// pointers.
func ParseSlice(es *discoveryv1.EndpointSlice, family v1.IPFamily) (*Slice, []Warning) {
	if es == nil {
		return nil, nil
	}
	object := "EndpointSlice " + es.Namespace + "/" + es.Name
	warn := func(reason, format string, args ...any) Warning {
		return Warning{Object: object, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	if es.Namespace == "" || es.Name == "" {
		return nil, []Warning{warn(ReasonMissingMetadata, "ignored: namespace and name must be set")}
	}
	// As the API server would: names that are not DNS names never reach a
	// snapshot, so no rule's text can carry what they hold.
	if bad := BadLabel(es.Namespace); bad != "" {
		object = fmt.Sprintf("EndpointSlice %q", es.Namespace+"/"+es.Name)
		return nil, []Warning{warn(ReasonBadName, "ignored: namespace: %s", bad)}
	}
	if bad := BadSubdomain(es.Name); bad != "" {
		object = fmt.Sprintf("EndpointSlice %q", es.Namespace+"/"+es.Name)
		return nil, []Warning{warn(ReasonBadName, "ignored: name: %s", bad)}
	}
	service := es.Labels[discoveryv1.LabelServiceName]
	if service == "" {
		return nil, []Warning{warn(ReasonNoServiceName, "ignored: no %s label", discoveryv1.LabelServiceName)}
	}
	if bad := BadServiceName(service); bad != "" {
		return nil, []Warning{warn(ReasonBadName, "ignored: %s label %q: %s", discoveryv1.LabelServiceName, service, bad)}
	}
	switch es.AddressType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		if string(es.AddressType) != string(family) {
			return nil, []Warning{warn(ReasonOtherFamily, "ignored: addressType %s, this proxy handles %s", es.AddressType, family)}
		}
	default:
		return nil, []Warning{warn(ReasonAddressType, "ignored: addressType %q is not proxied", es.AddressType)}
	}

	var warnings []Warning
	s := &Slice{Namespace: es.Namespace, Name: es.Name, Service: service}
	for _, p := range es.Ports {
		// kube-proxy (EndpointSliceCache.endpointInfoByServicePort) skips a
		// port whose name is absent; an unnamed port carries the name "".
		if p.Name == nil {
			warnings = append(warnings, warn(ReasonBadPort, "port skipped: no name (an unnamed port has the name \"\")"))
			continue
		}
		name := *p.Name
		proto := v1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if bad := BadLabel(name); name != "" && bad != "" {
			warnings = append(warnings, warn(ReasonBadName, "port %q skipped: %s", name, bad))
			continue
		}
		if p.Port == nil || *p.Port <= 0 || *p.Port > 65535 {
			warnings = append(warnings, warn(ReasonBadPort, "port %q skipped: no valid port number", name))
			continue
		}
		switch proto {
		case v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP:
		default:
			warnings = append(warnings, warn(ReasonBadProtocol, "port %q skipped: unknown protocol %q", name, proto))
			continue
		}
		s.Ports = append(s.Ports, Port{PortKey: PortKey{Name: name, Protocol: proto}, Number: uint16(*p.Port)})
	}

	s.Endpoints = make([]SliceEndpoint, 0, len(es.Endpoints))
	for i := range es.Endpoints {
		ep := &es.Endpoints[i]
		if len(ep.Addresses) == 0 {
			warnings = append(warnings, warn(ReasonNoAddress, "endpoint %d skipped: no address", i))
			continue
		}
		addr, ok := ParseAddr(ep.Addresses[0])
		if !ok {
			warnings = append(warnings, warn(ReasonBadAddress, "endpoint %q skipped: not an IP address", ep.Addresses[0]))
			continue
		}
		if addr.Is6() != (family == v1.IPv6Protocol) {
			warnings = append(warnings, warn(ReasonOtherFamily, "endpoint %s skipped: not %s", addr, family))
			continue
		}
		if why := SpecialAddr(addr); why != "" {
			warnings = append(warnings, warn(ReasonSpecialAddress, "endpoint %s skipped: a %s address", addr, why))
			continue
		}
		if ep.NodeName != nil && *ep.NodeName != "" {
			if bad := BadSubdomain(*ep.NodeName); bad != "" {
				warnings = append(warnings, warn(ReasonBadName, "endpoint %s skipped: nodeName %q: %s", addr, *ep.NodeName, bad))
				continue
			}
		}
		se := SliceEndpoint{
			Addr:        addr,
			Ready:       ep.Conditions.Ready == nil || *ep.Conditions.Ready,
			Serving:     ep.Conditions.Serving == nil || *ep.Conditions.Serving,
			Terminating: ep.Conditions.Terminating != nil && *ep.Conditions.Terminating,
		}
		if ep.NodeName != nil {
			se.NodeName = *ep.NodeName
		}
		if ep.Zone != nil {
			se.Zone = *ep.Zone
		}
		if ep.Hints != nil {
			se.ZoneHints = hintNames(ep.Hints.ForZones, func(z discoveryv1.ForZone) string { return z.Name })
			se.NodeHints = hintNames(ep.Hints.ForNodes, func(n discoveryv1.ForNode) string { return n.Name })
		}
		s.Endpoints = append(s.Endpoints, se)
	}
	var repeated int
	s.Endpoints, repeated = collapseRepeats(s.Endpoints)
	if repeated > 0 {
		warnings = append(warnings, warn(ReasonRepeatedAddress, "%d endpoint(s) repeat an address listed before in the slice: one copy kept", repeated))
	}
	return s, warnings
}

// collapseRepeats keeps one endpoint per address of a slice, choosing as
// kube-proxy does when it reads a slice's endpoints in order: a copy that is
// not terminating replaces the one kept so far, a terminating one never
// does. The kept copy takes the place of the first. Across slices kube-proxy
// decides by map order; Merge then decides deterministically, and because
// each slice offers only the copy kube-proxy could keep from it, Merge's
// choice is always one kube-proxy could make.
func collapseRepeats(eps []SliceEndpoint) ([]SliceEndpoint, int) {
	if !hasRepeats(eps) {
		return eps, 0
	}
	at := make(map[netip.Addr]int, len(eps))
	out := eps[:0]
	for _, e := range eps {
		if i, seen := at[e.Addr]; seen {
			if !e.Terminating {
				out[i] = e
			}
			continue
		}
		at[e.Addr] = len(out)
		out = append(out, e)
	}
	n := len(eps) - len(out)
	clear(eps[len(out):])
	return out, n
}

// hasRepeats reports whether an address appears twice. Repeats are rare, so
// small slices are scanned without allocating.
func hasRepeats(eps []SliceEndpoint) bool {
	if len(eps) > 32 {
		seen := make(map[netip.Addr]struct{}, len(eps))
		for i := range eps {
			if _, dup := seen[eps[i].Addr]; dup {
				return true
			}
			seen[eps[i].Addr] = struct{}{}
		}
		return false
	}
	for i := range eps {
		for j := i + 1; j < len(eps); j++ {
			if eps[i].Addr == eps[j].Addr {
				return true
			}
		}
	}
	return false
}

func hintNames[T any](hints []T, name func(T) string) []string {
	if len(hints) == 0 {
		return nil
	}
	names := make([]string, len(hints))
	for i, h := range hints {
		names[i] = name(h)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Equal reports whether two parsed slices are identical; a tracker uses it to
// drop updates that change nothing a proxy uses.
func (s *Slice) Equal(o *Slice) bool {
	if s == nil || o == nil {
		return s == o
	}
	if s.Namespace != o.Namespace || s.Name != o.Name || s.Service != o.Service ||
		!slices.Equal(s.Ports, o.Ports) || len(s.Endpoints) != len(o.Endpoints) {
		return false
	}
	for i := range s.Endpoints {
		a, b := &s.Endpoints[i], &o.Endpoints[i]
		if a.Addr != b.Addr || a.NodeName != b.NodeName || a.Zone != b.Zone ||
			a.Ready != b.Ready || a.Serving != b.Serving || a.Terminating != b.Terminating ||
			!slices.Equal(a.ZoneHints, b.ZoneHints) || !slices.Equal(a.NodeHints, b.NodeHints) {
			return false
		}
	}
	return true
}
