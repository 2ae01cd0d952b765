package servicemaptest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	kit "github.com/lbkit/lbkit/servicemaptest"
)

// view prints slices as "name family ports: address(conditions node zone hints) ...".
func view(sl []*discoveryv1.EndpointSlice) []string {
	var out []string
	for _, es := range sl {
		var ports []string
		for _, p := range es.Ports {
			ports = append(ports, fmt.Sprintf("%s/%s/%d", *p.Name, *p.Protocol, *p.Port))
		}
		line := fmt.Sprintf("%s %s %s:", es.Name, es.AddressType, strings.Join(ports, ","))
		for _, ep := range es.Endpoints {
			var cond []string
			for _, c := range []struct {
				name string
				v    *bool
			}{{"ready", ep.Conditions.Ready}, {"serving", ep.Conditions.Serving}, {"terminating", ep.Conditions.Terminating}} {
				if c.v != nil && *c.v {
					cond = append(cond, c.name)
				}
			}
			extra := ""
			if ep.NodeName != nil {
				extra += " " + *ep.NodeName
			}
			if ep.Zone != nil {
				extra += " " + *ep.Zone
			}
			if ep.Hints != nil {
				for _, z := range ep.Hints.ForZones {
					extra += " hint:zone=" + z.Name
				}
				for _, n := range ep.Hints.ForNodes {
					extra += " hint:node=" + n.Name
				}
			}
			line += fmt.Sprintf(" %s(%s%s)", strings.Join(ep.Addresses, "+"), strings.Join(cond, ","), extra)
		}
		out = append(out, line)
	}
	return out
}

func TestSlicesFromPods(t *testing.T) {
	app := map[string]string{"app": "web"}
	web := func(mutate ...func(*v1.Service)) *v1.Service {
		return kit.Service("ns", "web", "10.96.0.10", []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP, TargetPort: intstr.FromString("http")}},
			append([]func(*v1.Service){func(s *v1.Service) { s.Spec.Selector = app }}, mutate...)...)
	}
	httpPort := []v1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	nodes := []*v1.Node{kit.Node("node-a", "zone-a"), kit.Node("node-b", "zone-b")}
	deleting := func(p *v1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)} }
	tests := []struct {
		name string
		svc  *v1.Service
		pods []*v1.Pod
		max  int
		want []string
	}{{
		name: "conditions",
		svc:  web(),
		pods: []*v1.Pod{
			kit.Pod("ns", "ready", "node-a", "10.244.0.1", true, app, httpPort),
			kit.Pod("ns", "unready", "node-a", "10.244.0.2", false, app, httpPort),
			kit.Pod("ns", "terminating", "node-b", "10.244.0.3", true, app, httpPort, deleting),
			kit.Pod("ns", "stopping", "node-b", "10.244.0.4", false, app, httpPort, deleting),
			kit.Pod("ns", "done", "node-b", "10.244.0.5", true, app, httpPort, func(p *v1.Pod) { p.Status.Phase = v1.PodSucceeded }),
			kit.Pod("ns", "pending", "node-b", "", false, app, httpPort, func(p *v1.Pod) { p.Status.PodIPs = nil }),
			kit.Pod("ns", "other-app", "node-b", "10.244.0.6", true, map[string]string{"app": "db"}, httpPort),
			kit.Pod("other-ns", "web", "node-b", "10.244.0.7", true, app, httpPort),
		},
		want: []string{"web-1 IPv4 http/TCP/8080: 10.244.0.1(ready,serving node-a zone-a) 10.244.0.2( node-a zone-a)" +
			" 10.244.0.3(serving,terminating node-b zone-b) 10.244.0.4(terminating node-b zone-b)"},
	}, {
		name: "publishNotReadyAddresses",
		svc:  web(func(s *v1.Service) { s.Spec.PublishNotReadyAddresses = true }),
		pods: []*v1.Pod{kit.Pod("ns", "unready", "node-a", "10.244.0.2", false, app, httpPort)},
		want: []string{"web-1 IPv4 http/TCP/8080: 10.244.0.2(ready node-a zone-a)"},
	}, {
		name: "a named port resolves per pod",
		svc:  web(),
		pods: []*v1.Pod{
			kit.Pod("ns", "a", "node-a", "10.244.0.1", true, app, httpPort),
			kit.Pod("ns", "b", "node-a", "10.244.0.2", true, app, []v1.ContainerPort{{Name: "http", ContainerPort: 9090}}),
			kit.Pod("ns", "c", "node-a", "10.244.0.3", true, app, nil),
		},
		want: []string{
			"web-1 IPv4 : 10.244.0.3(ready,serving node-a zone-a)",
			"web-2 IPv4 http/TCP/8080: 10.244.0.1(ready,serving node-a zone-a)",
			"web-3 IPv4 http/TCP/9090: 10.244.0.2(ready,serving node-a zone-a)",
		},
	}, {
		name: "dual stack",
		svc: web(func(s *v1.Service) {
			s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
		}),
		pods: []*v1.Pod{kit.Pod("ns", "a", "node-a", "10.244.0.1", true, app, httpPort, func(p *v1.Pod) {
			p.Status.PodIPs = append(p.Status.PodIPs, v1.PodIP{IP: "fd00:244::1"})
		})},
		want: []string{
			"web-1 IPv4 http/TCP/8080: 10.244.0.1(ready,serving node-a zone-a)",
			"web-2 IPv6 http/TCP/8080: fd00:244::1(ready,serving node-a zone-a)",
		},
	}, {
		name: "trafficDistribution PreferSameNode, split at 2 per slice",
		svc:  web(func(s *v1.Service) { s.Spec.TrafficDistribution = kit.Ptr(v1.ServiceTrafficDistributionPreferSameNode) }),
		pods: []*v1.Pod{
			kit.Pod("ns", "a", "node-a", "10.244.0.1", true, app, httpPort),
			kit.Pod("ns", "b", "node-b", "10.244.0.2", true, app, httpPort),
			kit.Pod("ns", "c", "node-c", "10.244.0.3", true, app, httpPort),
		},
		max: 2,
		want: []string{
			"web-1 IPv4 http/TCP/8080: 10.244.0.1(ready,serving node-a zone-a hint:zone=zone-a hint:node=node-a) 10.244.0.2(ready,serving node-b zone-b hint:zone=zone-b hint:node=node-b)",
			"web-2 IPv4 http/TCP/8080: 10.244.0.3(ready,serving node-c hint:node=node-c)",
		},
	}, {
		name: "no selector: no slices",
		svc:  kit.Service("ns", "manual", "10.96.0.11", []v1.ServicePort{{Name: "http", Port: 80}}),
		pods: []*v1.Pod{kit.Pod("ns", "a", "node-a", "10.244.0.1", true, app, httpPort)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := view(kit.SlicesFromPods(tt.svc, tt.pods, kit.SliceOptions{Nodes: nodes, MaxEndpointsPerSlice: tt.max}))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("slices (-want +got):\n%s", diff)
			}
		})
	}
}
