package userspace

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/internal/nftfam"
	"github.com/lbkit/lbkit/internal/netprefix"
	"github.com/lbkit/lbkit/servicemap"
)

// frontendKey is a socket address the proxy serves.
type frontendKey struct {
	proto v1.Protocol
	addr  netip.AddrPort
}

func (k frontendKey) String() string { return strings.ToLower(string(k.proto)) + " " + k.addr.String() }

func compareKeys(a, b frontendKey) int {
	return cmp.Or(strings.Compare(string(a.proto), string(b.proto)), a.addr.Compare(b.addr))
}

// listenSpec is one socket to serve and what it serves.
type listenSpec struct {
	kind backends.Frontend
	port *servicemap.ServicePort
}

// allowed is one source range a firewalled frontend admits.
type allowed struct {
	key    frontendKey
	source netip.Prefix
}

// desired is what the proxy serves for one snapshot: a pure function of the
// snapshot, the options and the node's addresses.
type desired struct {
	ipv6 bool
	// listen are the sockets to serve. A frontend whose service has no
	// usable endpoint has none, so the kernel refuses it at once (TCP
	// reset, ICMP port unreachable), as the kernel backends' REJECT does.
	listen map[frontendKey]listenSpec
	// vips go on the proxy's link: every cluster, external and
	// load-balancer IP that is not already one of the node's addresses.
	vips []netip.Addr
	// The netfilter half's set elements (see netfilter_linux.go).
	drop         []frontendKey // every new connection dropped
	dropExternal []frontendKey // dropped unless from a pod or the node
	firewall     []frontendKey // only the allowed sources may connect
	allow        []allowed
	pods         []netip.Prefix // the pod CIDRs of the family
}

// family is the nftables family of the snapshot's addresses.
func (d *desired) family() nftfam.Family {
	if d.ipv6 {
		return nftfam.IPv6
	}
	return nftfam.IPv4
}

// plan computes the desired state. nodeIPs are the node's own addresses
// (node ports are served on those NodePortAddresses admits).
func plan(snap *servicemap.Snapshot, o *Spec, nodeIPs []netip.Addr) *desired {
	d := &desired{ipv6: snap.IPFamily() == v1.IPv6Protocol, listen: map[frontendKey]listenSpec{}}
	nodePortIPs := d.family().NodePortIPs(nodeIPs, o.NodePortAddresses)
	for _, p := range netprefix.Disjoint(o.ClusterCIDRs) {
		if p.Addr().Is6() == d.ipv6 {
			d.pods = append(d.pods, p)
		}
	}
	vips := map[netip.Addr]bool{}
	for _, sp := range snap.Ports() {
		if sp.ClusterIP.Is6() != d.ipv6 {
			continue
		}
		pl := backends.Plan(sp)
		key := func(a netip.Addr, port uint16) frontendKey {
			return frontendKey{sp.Protocol, netip.AddrPortFrom(a, port)}
		}
		listen := func(k frontendKey, kind backends.Frontend) {
			if _, taken := d.listen[k]; !taken {
				d.listen[k] = listenSpec{kind: kind, port: sp}
			}
		}
		vips[sp.ClusterIP] = true
		cip := key(sp.ClusterIP, sp.Port)
		switch pl.Internal.Verdict {
		case backends.Forward:
			listen(cip, backends.FrontendClusterIP)
		case backends.Drop:
			d.drop = append(d.drop, cip)
		}
		external := func(k frontendKey, kind backends.Frontend) {
			if !pl.HasEndpoints() {
				return // rejected: no socket
			}
			listen(k, kind)
			if pl.External.Verdict == backends.Drop {
				d.dropExternal = append(d.dropExternal, k)
			}
		}
		for _, a := range sp.ExternalIPs {
			vips[a] = true
			external(key(a, sp.Port), backends.FrontendExternalIP)
		}
		for _, a := range sp.LoadBalancerIPs {
			vips[a] = true
			k := key(a, sp.Port)
			external(k, backends.FrontendLoadBalancerIP)
			if pl.Firewall && pl.HasEndpoints() {
				d.firewall = append(d.firewall, k)
				for _, src := range pl.AllowedSources(nodeIPs) {
					d.allow = append(d.allow, allowed{k, src})
				}
			}
		}
		if sp.NodePort != 0 {
			for _, a := range nodePortIPs {
				external(key(a, sp.NodePort), backends.FrontendNodePort)
			}
		}
	}
	for a := range vips {
		if !slices.Contains(nodeIPs, a) {
			d.vips = append(d.vips, a)
		}
	}
	slices.SortFunc(d.vips, netip.Addr.Compare)
	for _, s := range [][]frontendKey{d.drop, d.dropExternal, d.firewall} {
		slices.SortFunc(s, compareKeys)
	}
	slices.SortFunc(d.allow, func(a, b allowed) int {
		return cmp.Or(compareKeys(a.key, b.key), netprefix.Compare(a.source, b.source))
	})
	return d
}

// text renders the desired state for people: the addresses on the link,
// every socket with the service port it serves and the endpoints each kind
// of traffic goes to, and the netfilter elements.
func (d *desired) text(link, table string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "link %s:", link)
	for _, a := range d.vips {
		fmt.Fprintf(&b, " %s", a)
	}
	b.WriteString("\n")
	keys := make([]frontendKey, 0, len(d.listen))
	for k := range d.listen {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		spec := d.listen[k]
		pl := backends.Plan(spec.port)
		route := pl.External
		if spec.kind == backends.FrontendClusterIP {
			route = pl.Internal
		}
		fmt.Fprintf(&b, "listen %s (%s of %s) -> %s", k, spec.kind, spec.port.Name, routeText(route))
		if spec.kind != backends.FrontendClusterIP && pl.ShortCircuit {
			fmt.Fprintf(&b, "; pods and node -> %s", listText(pl.Cluster))
		}
		if pl.AffinitySeconds > 0 {
			fmt.Fprintf(&b, "; ClientIP affinity %ds", pl.AffinitySeconds)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "table %s %s:\n", d.family().IP, table)
	for _, s := range []struct {
		what string
		keys []frontendKey
	}{{"drop", d.drop}, {"drop unless from a pod or the node", d.dropExternal}, {"firewall", d.firewall}} {
		for _, k := range s.keys {
			fmt.Fprintf(&b, "  %s %s\n", s.what, k)
		}
	}
	for _, a := range d.allow {
		fmt.Fprintf(&b, "  allow %s from %s\n", a.key, a.source)
	}
	return b.String()
}

func routeText(r backends.Route) string {
	if r.Verdict != backends.Forward {
		return strings.ToUpper(r.Verdict.String())
	}
	return listText(r.Endpoints)
}

func listText[T fmt.Stringer](eps []T) string {
	parts := make([]string, len(eps))
	for i, ep := range eps {
		parts[i] = ep.String()
	}
	return strings.Join(parts, ",")
}
