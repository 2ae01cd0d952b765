package servicemap

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/affinity"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/internal/netprefix"
)

// Well-known labels that decide whether a proxy handles an object.
const (
	// LabelServiceProxyName names the proxy that handles a Service. kube-proxy
	// skips Services that carry it; an alternative proxy handles only those
	// labelled with its own name.
	LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	// LabelHeadless marks the EndpointSlices of headless Services.
	LabelHeadless = v1.IsHeadlessService
)

// Warning is a skipped or corrected input value; see endpoints.Warning.
type Warning = endpoints.Warning

// Reasons reported for Services.
const (
	ReasonBadClusterIP    = "InvalidClusterIP"
	ReasonBadServicePort  = "InvalidServicePort"
	ReasonBadExternalIP   = "InvalidExternalIP"
	ReasonBadSourceRange  = "InvalidSourceRange"
	ReasonBadIngressIP    = "InvalidLoadBalancerIP"
	ReasonSessionAffinity = "SessionAffinity"
	ReasonHealthCheck     = "NoHealthCheckNodePort"
	ReasonBadName         = endpoints.ReasonBadName
	ReasonSpecialAddress  = endpoints.ReasonSpecialAddress
	ReasonSourceRanges    = "SourceRangesOfOtherFamily"
	ReasonConflict        = "FrontendConflict"
	ReasonNodeAddress     = "NodeAddress"
)

// filter decides which objects the tracker handles, by their labels.
type filter struct{ proxyName string }

// handlesService applies kube-proxy's Service informer label selector
// (!service-proxy-name) or, with a proxy name configured, selects exactly the
// Services labelled with that name. The headless label filters
// EndpointSlices only: kube-proxy's Service informer does not select on it
// (a headless Service is recognised by its clusterIP None).
func (f filter) handlesService(svc *v1.Service) bool {
	name, labelled := svc.Labels[LabelServiceProxyName]
	if f.proxyName == "" {
		return !labelled
	}
	return labelled && name == f.proxyName
}

// servicePorts reads a Service into its ports for one IP family, without
// endpoints. It returns nil for a Service a proxy does not program:
// ExternalName, headless (clusterIP None), no cluster IP, or no cluster IP of
// this family. Values the API server would have refused are skipped with a
// warning, as is the whole Service when its names or cluster IP are not
// valid: nothing that reaches a snapshot needs escaping in a rule's text.
func servicePorts(svc *v1.Service, family v1.IPFamily) ([]*ServicePort, []Warning) {
	if svc.Spec.Type == v1.ServiceTypeExternalName ||
		svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == v1.ClusterIPNone {
		return nil, nil
	}
	object := "Service " + svc.Namespace + "/" + svc.Name
	var warnings []Warning
	warn := func(reason, format string, args ...any) {
		warnings = append(warnings, Warning{Object: object, Reason: reason, Message: fmt.Sprintf(format, args...)})
	}
	if bad := endpoints.BadLabel(svc.Namespace); bad != "" {
		object = fmt.Sprintf("Service %q", svc.Namespace+"/"+svc.Name)
		warn(ReasonBadName, "skipped: namespace: %s", bad)
		return nil, warnings
	}
	if bad := endpoints.BadServiceName(svc.Name); bad != "" {
		object = fmt.Sprintf("Service %q", svc.Namespace+"/"+svc.Name)
		warn(ReasonBadName, "skipped: name: %s", bad)
		return nil, warnings
	}

	ipText, declared := clusterIPOfFamily(svc, family)
	if ipText == "" {
		return nil, nil
	}
	clusterIP, ok := endpoints.ParseAddr(ipText)
	switch {
	case !ok:
		warn(ReasonBadClusterIP, "skipped: cluster IP %q is not an IP address", ipText)
		return nil, warnings
	case !sameFamily(clusterIP, family) && declared:
		warn(ReasonBadClusterIP, "skipped: cluster IP %s is not %s, as spec.ipFamilies says", clusterIP, family)
		return nil, warnings
	case !sameFamily(clusterIP, family):
		return nil, nil // a single-stack Service of the other family
	case endpoints.SpecialAddr(clusterIP) != "":
		warn(ReasonSpecialAddress, "skipped: cluster IP %s is a %s address", clusterIP, endpoints.SpecialAddr(clusterIP))
		return nil, warnings
	}

	tmpl := ServicePort{
		ClusterIP:             clusterIP,
		InternalTrafficPolicy: v1.ServiceInternalTrafficPolicyCluster,
		ExternalTrafficPolicy: v1.ServiceExternalTrafficPolicyCluster,
	}
	if p := svc.Spec.InternalTrafficPolicy; p != nil && *p == v1.ServiceInternalTrafficPolicyLocal {
		tmpl.InternalTrafficPolicy = v1.ServiceInternalTrafficPolicyLocal
	}
	if externallyAccessible(svc) && svc.Spec.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal {
		tmpl.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
	}

	// Addresses of the other family are legitimately present in a
	// dual-stack Service: they are simply not this tracker's.
	usable := func(field, s string) (netip.Addr, bool) {
		a, ok := endpoints.ParseAddr(s)
		switch {
		case !ok:
			reason := ReasonBadExternalIP
			if field != "external IP" {
				reason = ReasonBadIngressIP
			}
			warn(reason, "%s %q skipped: not an IP address", field, s)
		case !sameFamily(a, family):
		case endpoints.SpecialAddr(a) != "":
			warn(ReasonSpecialAddress, "%s %s skipped: a %s address", field, a, endpoints.SpecialAddr(a))
		default:
			return a, true
		}
		return netip.Addr{}, false
	}
	for _, s := range svc.Spec.ExternalIPs {
		if a, ok := usable("external IP", s); ok {
			tmpl.ExternalIPs = append(tmpl.ExternalIPs, a)
		}
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" || (ing.IPMode != nil && *ing.IPMode != v1.LoadBalancerIPModeVIP) {
			continue
		}
		if a, ok := usable("load-balancer ingress IP", ing.IP); ok {
			tmpl.LoadBalancerIPs = append(tmpl.LoadBalancerIPs, a)
		}
	}
	tmpl.ExternalIPs = sortedAddrs(tmpl.ExternalIPs)
	tmpl.LoadBalancerIPs = sortedAddrs(tmpl.LoadBalancerIPs)
	tmpl.LoadBalancerSourceRanges = sourceRanges(svc, family, len(tmpl.LoadBalancerIPs) > 0, warn)

	aff, affWarnings := affinity.FromService(svc)
	tmpl.Affinity = aff
	for _, w := range affWarnings {
		warn(ReasonSessionAffinity, "%s", w)
	}

	if svc.Spec.Type == v1.ServiceTypeLoadBalancer && tmpl.ExternalTrafficPolicy == v1.ServiceExternalTrafficPolicyLocal {
		if p := svc.Spec.HealthCheckNodePort; p > 0 && p <= 65535 {
			tmpl.HealthCheckNodePort = uint16(p)
		} else {
			warn(ReasonHealthCheck, "externalTrafficPolicy Local without a valid healthCheckNodePort (%d)", p)
		}
	}

	ports := make([]*ServicePort, 0, len(svc.Spec.Ports))
	slab := make([]ServicePort, 0, len(svc.Spec.Ports)) // one allocation; never grows
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		proto := sp.Protocol
		if proto == "" {
			proto = v1.ProtocolTCP
		}
		if bad := endpoints.BadLabel(sp.Name); sp.Name != "" && bad != "" {
			warn(ReasonBadName, "port %q skipped: %s", sp.Name, bad)
			continue
		}
		switch proto {
		case v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP:
		default:
			warn(ReasonBadServicePort, "port %q skipped: unknown protocol %q", sp.Name, proto)
			continue
		}
		if sp.Port <= 0 || sp.Port > 65535 {
			warn(ReasonBadServicePort, "port %q skipped: invalid port %d", sp.Name, sp.Port)
			continue
		}
		p := tmpl
		p.Name = ServicePortName{Namespace: svc.Namespace, Name: svc.Name, Port: sp.Name, Protocol: proto}
		p.Port = uint16(sp.Port)
		p.Protocol = proto
		if sp.NodePort > 0 && sp.NodePort <= 65535 {
			p.NodePort = uint16(sp.NodePort)
		} else if sp.NodePort != 0 {
			warn(ReasonBadServicePort, "port %q: invalid nodePort %d ignored", sp.Name, sp.NodePort)
		}
		slab = append(slab, p)
		ports = append(ports, &slab[len(slab)-1])
	}
	// Of a port listed twice the last is kept, as kube-proxy's map of ports
	// (ServiceChangeTracker.serviceToServiceMap) keeps it: reversed, then
	// sorted stably, the last listed comes first and survives Compact.
	slices.Reverse(ports)
	slices.SortStableFunc(ports, func(a, b *ServicePort) int { return a.Name.Compare(b.Name) })
	return slices.CompactFunc(ports, func(a, b *ServicePort) bool {
		if a.Name != b.Name {
			return false
		}
		warn(ReasonBadServicePort, "port %q/%s skipped: listed twice", b.Name.Port, b.Protocol)
		return true
	}), warnings
}

// sourceRanges returns the loadBalancerSourceRanges of the family, trimmed
// (API validation accepts whitespace around them), masked, sorted and
// without duplicates. As kube-proxy: a range of length zero (0.0.0.0/0,
// ::/0) means any source, so the result is then empty, not nil. Ranges
// that are all of the other family leave this family's load balancer open:
// that is warned about, when the port has load-balancer IPs to protect.
func sourceRanges(svc *v1.Service, family v1.IPFamily, hasLB bool, warn func(reason, format string, args ...any)) []netip.Prefix {
	var out []netip.Prefix
	other := 0
	for _, s := range svc.Spec.LoadBalancerSourceRanges {
		p, ok := endpoints.ParsePrefix(strings.TrimSpace(s))
		switch {
		case !ok:
			warn(ReasonBadSourceRange, "loadBalancerSourceRange %q skipped: not a CIDR", s)
		case !sameFamily(p.Addr(), family):
			other++
		default:
			out = append(out, p)
		}
	}
	if slices.ContainsFunc(out, func(p netip.Prefix) bool { return p.Bits() == 0 }) {
		return []netip.Prefix{}
	}
	if len(out) == 0 && other > 0 && hasLB {
		warn(ReasonSourceRanges, "every loadBalancerSourceRange is of another family than %s: this family's load balancer admits any source", family)
	}
	slices.SortFunc(out, netprefix.Compare)
	return slices.Compact(out)
}

// externallyAccessible is Kubernetes' rule for where externalTrafficPolicy
// applies: NodePort and LoadBalancer services, and ClusterIP services with
// external IPs. (An empty type is ClusterIP, the API server's default.)
func externallyAccessible(svc *v1.Service) bool {
	switch svc.Spec.Type {
	case v1.ServiceTypeNodePort, v1.ServiceTypeLoadBalancer:
		return true
	case v1.ServiceTypeClusterIP, "":
		return len(svc.Spec.ExternalIPs) > 0
	}
	return false
}

// clusterIPOfFamily returns the Service's cluster IP of the given family,
// as kube-proxy picks it: from spec.clusterIPs by spec.ipFamilies, or, for
// an object written before dual-stack fields existed, from spec.clusterIP.
// declared reports that spec.ipFamilies names the family for it, so an
// address of the other family there is an error, not another family's.
func clusterIPOfFamily(svc *v1.Service, family v1.IPFamily) (ip string, declared bool) {
	if len(svc.Spec.IPFamilies) == 0 {
		return svc.Spec.ClusterIP, false
	}
	for i, f := range svc.Spec.IPFamilies {
		if f == family && i < len(svc.Spec.ClusterIPs) {
			return svc.Spec.ClusterIPs[i], true
		}
	}
	return "", false
}

func sameFamily(a netip.Addr, family v1.IPFamily) bool {
	return a.Is6() == (family == v1.IPv6Protocol)
}

func sortedAddrs(a []netip.Addr) []netip.Addr {
	slices.SortFunc(a, netip.Addr.Compare)
	return slices.Compact(a)
}
