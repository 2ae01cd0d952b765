package fake

import (
	"net/netip"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/servicemap"
)

// Render returns the state a Backend holds once it is in sync with snap: one
// line per service port, sorted by name, each ending in a newline. It is
// what [Backend.Dump] returns after a successful Sync to snap.
//
// A line holds, separated by single spaces and in this order:
//
//	name protocol clusterIP:port      always, e.g. "default/web:http TCP 10.96.0.10:80"
//	nodePort=N                        when the port has a node port
//	externalIPs=A,B                   when it has external IPs
//	loadBalancerIPs=A,B               when it has load-balancer IPs
//	sourceRanges=P,Q                  when loadBalancerSourceRanges restrict it
//	affinity=ClientIP(Ns)             with ClientIP session affinity
//	internal=Local, external=Local    for Local traffic policies
//	healthCheckNodePort=N             when it has one
//	cluster=E1,E2                     endpoints for Cluster-policy traffic
//	local=E1,E2                       endpoints for Local-policy traffic
//
// Defaults (no node port, no affinity, Cluster policies) are left out.
// cluster= and local= appear when the port uses that list; an empty list is
// written as what the data plane does with the packet: "drop" when the
// service has endpoints elsewhere, "reject" when it has none.
func Render(snap *servicemap.Snapshot) string {
	var b strings.Builder
	for _, p := range snap.Ports() {
		b.WriteString(renderPort(p))
		b.WriteByte('\n')
	}
	return b.String()
}

// renderPort returns one line of Render, without the newline.
func renderPort(p *servicemap.ServicePort) string {
	var b strings.Builder
	b.WriteString(p.Name.String())
	b.WriteByte(' ')
	b.WriteString(string(p.Protocol))
	b.WriteByte(' ')
	b.WriteString(netip.AddrPortFrom(p.ClusterIP, p.Port).String())
	if p.NodePort != 0 {
		b.WriteString(" nodePort=" + strconv.Itoa(int(p.NodePort)))
	}
	writeList(&b, "externalIPs", p.ExternalIPs)
	writeList(&b, "loadBalancerIPs", p.LoadBalancerIPs)
	writeList(&b, "sourceRanges", p.LoadBalancerSourceRanges)
	if p.Affinity.ClientIP {
		b.WriteString(" affinity=" + p.Affinity.String())
	}
	if p.InternalTrafficPolicy == v1.ServiceInternalTrafficPolicyLocal {
		b.WriteString(" internal=Local")
	}
	if p.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal {
		b.WriteString(" external=Local")
	}
	if p.HealthCheckNodePort != 0 {
		b.WriteString(" healthCheckNodePort=" + strconv.Itoa(int(p.HealthCheckNodePort)))
	}
	plan := backends.Plan(p)
	writeEndpoints(&b, "cluster", p.Topology.Cluster, plan.HasEndpoints())
	writeEndpoints(&b, "local", p.Topology.Local, plan.HasEndpoints())
	return b.String()
}

func writeList[T interface{ String() string }](b *strings.Builder, key string, list []T) {
	if len(list) == 0 {
		return
	}
	b.WriteString(" " + key + "=")
	for i, v := range list {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(v.String())
	}
}

// writeEndpoints writes a used endpoint list; a nil list is not used. An
// empty one is what its traffic meets (backends.PortPlan): dropped when the
// service has endpoints elsewhere, rejected when it has none.
func writeEndpoints(b *strings.Builder, key string, eps []endpoints.Endpoint, hasEndpoints bool) {
	switch {
	case eps == nil:
	case len(eps) > 0:
		writeList(b, key, eps)
	case hasEndpoints:
		b.WriteString(" " + key + "=drop")
	default:
		b.WriteString(" " + key + "=reject")
	}
}

// frontends returns the addresses a port claims in the data plane; two ports
// claiming the same one conflict.
func frontends(p *servicemap.ServicePort) []string {
	proto := string(p.Protocol) + " "
	out := []string{proto + netip.AddrPortFrom(p.ClusterIP, p.Port).String()}
	for _, a := range p.ExternalIPs {
		out = append(out, proto+netip.AddrPortFrom(a, p.Port).String())
	}
	for _, a := range p.LoadBalancerIPs {
		out = append(out, proto+netip.AddrPortFrom(a, p.Port).String())
	}
	if p.NodePort != 0 {
		out = append(out, proto+"nodePort "+strconv.Itoa(int(p.NodePort)))
	}
	return out
}
