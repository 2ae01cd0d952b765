package servicemaptest

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// SliceOptions configure SlicesFromPods.
type SliceOptions struct {
	// Nodes give the endpoints' zones (from the topology.kubernetes.io/zone
	// label of the pod's node); a node missing here gives no zone.
	Nodes []*v1.Node
	// MaxEndpointsPerSlice splits the endpoints of one port mapping into
	// slices of at most this many (100, the controller's default, when
	// zero).
	MaxEndpointsPerSlice int
}

// Pod returns a running Pod of namespace ns on node with one IP (IPv4 or
// IPv6, after its text), ready when ready is true, labelled with labels,
// and with one container exposing containerPorts; then applies mutate.
// Mutators set what a case needs: DeletionTimestamp for a terminating pod,
// a second PodIPs entry for dual stack, a phase.
func Pod(ns, name, node, ip string, ready bool, podLabels map[string]string, containerPorts []v1.ContainerPort, mutate ...func(*v1.Pod)) *v1.Pod {
	status := v1.ConditionFalse
	if ready {
		status = v1.ConditionTrue
	}
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: podLabels},
		Spec: v1.PodSpec{
			NodeName:   node,
			Containers: []v1.Container{{Name: "main", Ports: containerPorts}},
		},
		Status: v1.PodStatus{
			Phase:      v1.PodRunning,
			PodIP:      ip,
			PodIPs:     []v1.PodIP{{IP: ip}},
			Conditions: []v1.PodCondition{{Type: v1.PodReady, Status: status}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

// SlicesFromPods returns the EndpointSlices the EndpointSlice controller
// would write for svc, given every Pod of the cluster. As the controller
// (k8s.io/endpointslice, v1.37):
//
//   - a Service without a selector gets no slices (its slices are someone
//     else's), and only pods of its namespace whose labels match the
//     selector count;
//   - pods that are terminal (Succeeded, Failed) or have no IP are left
//     out; terminating pods (deletionTimestamp set) stay, with
//     terminating=true;
//   - serving is the pod's Ready condition; ready is serving and not
//     terminating, or true whenever publishNotReadyAddresses is set;
//   - one slice per address family of the Service's ipFamilies, holding
//     that family's pod IPs, and per distinct set of port numbers: a named
//     targetPort resolves per pod, to the container port of that name;
//     a port a pod does not have leaves it out of that port;
//   - nodeName is the pod's node, zone that node's zone label; with
//     trafficDistribution PreferClose or PreferSameZone each endpoint is
//     hinted for its own zone, with PreferSameNode for its own node and
//     zone;
//   - at most MaxEndpointsPerSlice endpoints per slice.
//
// Slices are named <service>-<n> (the controller generates random suffixes)
// and sorted by name; endpoints are sorted by address.
func SlicesFromPods(svc *v1.Service, pods []*v1.Pod, opts SliceOptions) []*discoveryv1.EndpointSlice {
	if svc.Spec.Selector == nil {
		return nil
	}
	perSlice := cmp.Or(opts.MaxEndpointsPerSlice, 100)
	selector := labels.SelectorFromSet(svc.Spec.Selector)
	zones := map[string]string{}
	for _, n := range opts.Nodes {
		zones[n.Name] = n.Labels[v1.LabelTopologyZone]
	}
	families := svc.Spec.IPFamilies
	if len(families) == 0 {
		families = []v1.IPFamily{v1.IPv4Protocol}
		if a, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil && a.Is6() {
			families = []v1.IPFamily{v1.IPv6Protocol}
		}
	}

	type group struct {
		family v1.IPFamily
		ports  []discoveryv1.EndpointPort
		eps    []discoveryv1.Endpoint
	}
	groups := map[string]*group{}
	for _, pod := range pods {
		if pod.Namespace != svc.Namespace || !selector.Matches(labels.Set(pod.Labels)) || !included(pod) {
			continue
		}
		ports := podPorts(svc, pod)
		for _, fam := range families {
			addrs := podAddrs(pod, fam)
			if len(addrs) == 0 {
				continue
			}
			key := string(fam) + portsKey(ports)
			g := groups[key]
			if g == nil {
				g = &group{family: fam, ports: ports}
				groups[key] = g
			}
			g.eps = append(g.eps, endpointOf(svc, pod, addrs, zones))
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []*discoveryv1.EndpointSlice
	for _, k := range keys {
		g := groups[k]
		slices.SortFunc(g.eps, func(a, b discoveryv1.Endpoint) int { return strings.Compare(a.Addresses[0], b.Addresses[0]) })
		for start := 0; start < len(g.eps); start += perSlice {
			es := &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					Namespace: svc.Namespace,
					Name:      fmt.Sprintf("%s-%d", svc.Name, len(out)+1),
					Labels: map[string]string{
						discoveryv1.LabelServiceName: svc.Name,
						discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
					},
				},
				AddressType: discoveryv1.AddressType(g.family),
				Ports:       g.ports,
				Endpoints:   g.eps[start:min(start+perSlice, len(g.eps))],
			}
			out = append(out, es)
		}
	}
	return out
}

// included is the controller's ShouldPodBeInEndpoints, terminating pods
// included.
func included(p *v1.Pod) bool {
	if p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
		return false
	}
	return p.Status.PodIP != "" || len(p.Status.PodIPs) > 0
}

func podAddrs(p *v1.Pod, fam v1.IPFamily) []string {
	ips := p.Status.PodIPs
	if len(ips) == 0 && p.Status.PodIP != "" {
		ips = []v1.PodIP{{IP: p.Status.PodIP}}
	}
	var out []string
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip.IP); err == nil && a.Is6() == (fam == v1.IPv6Protocol) {
			out = append(out, a.String())
		}
	}
	return out
}

// podPorts resolves the Service's ports for one pod, leaving out a named
// targetPort the pod does not have.
func podPorts(svc *v1.Service, p *v1.Pod) []discoveryv1.EndpointPort {
	out := []discoveryv1.EndpointPort{}
	for _, sp := range svc.Spec.Ports {
		proto := cmp.Or(sp.Protocol, v1.ProtocolTCP)
		num, ok := findPort(p, sp, proto)
		if !ok {
			continue
		}
		out = append(out, discoveryv1.EndpointPort{Name: Ptr(sp.Name), Port: Ptr(num), Protocol: Ptr(proto), AppProtocol: sp.AppProtocol})
	}
	return out
}

func findPort(p *v1.Pod, sp v1.ServicePort, proto v1.Protocol) (int32, bool) {
	switch tp := sp.TargetPort; {
	case tp.Type == intstr.String && tp.StrVal != "":
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == tp.StrVal && cmp.Or(cp.Protocol, v1.ProtocolTCP) == proto {
					return cp.ContainerPort, true
				}
			}
		}
		return 0, false
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return tp.IntVal, true
	}
	return sp.Port, true
}

func portsKey(ps []discoveryv1.EndpointPort) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "|%s/%s/%d", *p.Name, *p.Protocol, *p.Port)
	}
	return b.String()
}

func endpointOf(svc *v1.Service, p *v1.Pod, addrs []string, zones map[string]string) discoveryv1.Endpoint {
	serving := false
	for _, c := range p.Status.Conditions {
		if c.Type == v1.PodReady {
			serving = c.Status == v1.ConditionTrue
		}
	}
	terminating := p.DeletionTimestamp != nil
	ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
	ep := discoveryv1.Endpoint{
		Addresses:  addrs,
		Conditions: discoveryv1.EndpointConditions{Ready: Ptr(ready), Serving: Ptr(serving), Terminating: Ptr(terminating)},
		TargetRef:  &v1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
	}
	if p.Spec.NodeName != "" {
		ep.NodeName = Ptr(p.Spec.NodeName)
	}
	zone := zones[p.Spec.NodeName]
	if zone != "" {
		ep.Zone = Ptr(zone)
	}
	if td := svc.Spec.TrafficDistribution; td != nil {
		switch *td {
		case v1.ServiceTrafficDistributionPreferClose, v1.ServiceTrafficDistributionPreferSameZone:
			if zone != "" {
				ep.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: zone}}}
			}
		case v1.ServiceTrafficDistributionPreferSameNode:
			if p.Spec.NodeName != "" {
				ep.Hints = &discoveryv1.EndpointHints{ForNodes: []discoveryv1.ForNode{{Name: p.Spec.NodeName}}}
				if zone != "" {
					ep.Hints.ForZones = []discoveryv1.ForZone{{Name: zone}}
				}
			}
		}
	}
	return ep
}
