package main

// The API server fills in fields a client left out before it stores an
// object, partly in its defaulting functions (k8s.io/kubernetes
// pkg/apis/core/v1/defaults.go, pkg/apis/discovery/v1/defaults.go) and
// partly in the Service registry (cluster IPs and IP families). A proxy only
// ever sees stored objects, so manifests are defaulted here the same way for
// the fields a proxy reads. What the API server allocates (a cluster IP, node
// ports, a health check node port) cannot be made up and stays unset.

import (
	"net/netip"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// defaultService sets the defaults of svc in place.
func defaultService(svc *v1.Service) {
	if svc.Namespace == "" {
		svc.Namespace = metav1.NamespaceDefault
	}
	spec := &svc.Spec
	if spec.Type == "" {
		spec.Type = v1.ServiceTypeClusterIP
	}

	if spec.SessionAffinity == "" {
		spec.SessionAffinity = v1.ServiceAffinityNone
	}
	switch spec.SessionAffinity {
	case v1.ServiceAffinityNone:
		spec.SessionAffinityConfig = nil
	case v1.ServiceAffinityClientIP:
		cfg := spec.SessionAffinityConfig
		if cfg == nil || cfg.ClientIP == nil || cfg.ClientIP.TimeoutSeconds == nil {
			spec.SessionAffinityConfig = &v1.SessionAffinityConfig{
				ClientIP: &v1.ClientIPConfig{
					TimeoutSeconds: ptr.To(v1.DefaultClientIPServiceAffinitySeconds),
				},
			}
		}
	}

	for i := range spec.Ports {
		p := &spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = v1.ProtocolTCP
		}
		if p.TargetPort == intstr.FromInt32(0) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}

	if externallyAccessible(svc) && spec.ExternalTrafficPolicy == "" {
		spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
	}
	if spec.InternalTrafficPolicy == nil && spec.Type != v1.ServiceTypeExternalName {
		spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyCluster)
	}

	if spec.Type == v1.ServiceTypeLoadBalancer {
		if spec.AllocateLoadBalancerNodePorts == nil {
			spec.AllocateLoadBalancerNodePorts = ptr.To(true)
		}
		for i := range svc.Status.LoadBalancer.Ingress {
			ing := &svc.Status.LoadBalancer.Ingress[i]
			if ing.IP != "" && ing.IPMode == nil {
				ing.IPMode = ptr.To(v1.LoadBalancerIPModeVIP)
			}
		}
	}

	defaultServiceIPs(spec)
}

// externallyAccessible reports whether traffic can reach svc from outside
// the cluster, which is when the API server defaults its external traffic
// policy. Note that this includes a ClusterIP Service with external IPs.
func externallyAccessible(svc *v1.Service) bool {
	switch svc.Spec.Type {
	case v1.ServiceTypeLoadBalancer, v1.ServiceTypeNodePort:
		return true
	case v1.ServiceTypeClusterIP:
		return len(svc.Spec.ExternalIPs) > 0
	}
	return false
}

// defaultServiceIPs fills in clusterIP/clusterIPs from each other and derives
// the IP families and family policy from them, as the Service registry does.
// An ExternalName Service has no cluster IPs and is left alone; a headless
// Service ("None") gets no families, as no cluster IP tells them.
func defaultServiceIPs(spec *v1.ServiceSpec) {
	if spec.Type == v1.ServiceTypeExternalName {
		return
	}
	if len(spec.ClusterIPs) == 0 && spec.ClusterIP != "" {
		spec.ClusterIPs = []string{spec.ClusterIP}
	}
	if spec.ClusterIP == "" && len(spec.ClusterIPs) > 0 {
		spec.ClusterIP = spec.ClusterIPs[0]
	}
	if len(spec.IPFamilies) == 0 && spec.ClusterIP != v1.ClusterIPNone {
		spec.IPFamilies = ipFamilies(spec.ClusterIPs)
	}
	if spec.IPFamilyPolicy == nil {
		policy := v1.IPFamilyPolicySingleStack
		if len(spec.ClusterIPs) == 2 || len(spec.IPFamilies) == 2 {
			policy = v1.IPFamilyPolicyRequireDualStack
		}
		spec.IPFamilyPolicy = &policy
	}
}

// ipFamilies returns the family of each IP, or nil if any is not an IP
// (which the API server would have rejected).
func ipFamilies(ips []string) []v1.IPFamily {
	var families []v1.IPFamily
	for _, s := range ips {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil
		}
		if ip.Is4() {
			families = append(families, v1.IPv4Protocol)
		} else {
			families = append(families, v1.IPv6Protocol)
		}
	}
	return families
}

// defaultEndpointSlice sets the defaults of slice in place. Endpoint
// conditions are left alone: the API says a nil condition means true, and
// it is up to the reader to treat it so.
func defaultEndpointSlice(slice *discoveryv1.EndpointSlice) {
	if slice.Namespace == "" {
		slice.Namespace = metav1.NamespaceDefault
	}
	for i := range slice.Ports {
		p := &slice.Ports[i]
		if p.Name == nil {
			p.Name = ptr.To("")
		}
		if p.Protocol == nil {
			p.Protocol = ptr.To(v1.ProtocolTCP)
		}
	}
}

// defaultNode clears the namespace of node, which is not namespaced; the
// API server does the same. Nodes have no defaults a proxy reads.
func defaultNode(node *v1.Node) {
	node.Namespace = ""
}
