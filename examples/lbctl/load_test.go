package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// storedService returns ns/name as the API server stores a plain ClusterIP
// Service, changed by mutate.
func storedService(ns, name string, mutate ...func(*v1.Service)) *v1.Service {
	svc := &v1.Service{
		TypeMeta:   serviceTypeMeta,
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.ServiceSpec{
			Type:           v1.ServiceTypeClusterIP,
			ClusterIP:      "10.96.0.10",
			ClusterIPs:     []string{"10.96.0.10"},
			IPFamilies:     []v1.IPFamily{v1.IPv4Protocol},
			IPFamilyPolicy: ptr.To(v1.IPFamilyPolicySingleStack),
			Ports: []v1.ServicePort{{
				Name: "http", Protocol: v1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(8080),
			}},
			SessionAffinity:       v1.ServiceAffinityNone,
			InternalTrafficPolicy: ptr.To(v1.ServiceInternalTrafficPolicyCluster),
		},
	}
	for _, m := range mutate {
		m(svc)
	}
	return svc
}

// storedSlice returns ns/name as the API server stores an EndpointSlice
// with one port and no endpoints, changed by mutate.
func storedSlice(ns, name string, mutate ...func(*discoveryv1.EndpointSlice)) *discoveryv1.EndpointSlice {
	slice := &discoveryv1.EndpointSlice{
		TypeMeta:    sliceTypeMeta,
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{
			Name: ptr.To("http"), Protocol: ptr.To(v1.ProtocolTCP), Port: ptr.To[int32](8080),
		}},
	}
	for _, m := range mutate {
		m(slice)
	}
	return slice
}

func storedNode(name string, mutate ...func(*v1.Node)) *v1.Node {
	node := &v1.Node{TypeMeta: nodeTypeMeta, ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, m := range mutate {
		m(node)
	}
	return node
}

func TestLoadDocuments(t *testing.T) {
	webService := `apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, targetPort: 8080}]
`
	webSlice := `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}]
`
	nodeA := `apiVersion: v1
kind: Node
metadata: {name: node-a}
`
	web := storedService("default", "web")
	abc := storedSlice("default", "web-abc", func(s *discoveryv1.EndpointSlice) {
		s.Labels = map[string]string{discoveryv1.LabelServiceName: "web"}
	})

	tests := []struct {
		name string
		data string
		want *inputs
	}{{
		name: "nothing",
		data: "",
		want: &inputs{},
	}, {
		name: "only comments and separators",
		data: "# a comment\n---\n---\n\n---\n# another\n",
		want: &inputs{},
	}, {
		name: "one document",
		data: webService,
		want: &inputs{Services: []*v1.Service{web}},
	}, {
		name: "several documents, empty ones skipped",
		data: "---\n" + nodeA + "---\n# empty\n---\n" + webSlice + "---\n---\n" + webService + "---\n",
		want: &inputs{
			Services: []*v1.Service{web},
			Slices:   []*discoveryv1.EndpointSlice{abc},
			Nodes:    []*v1.Node{storedNode("node-a")},
		},
	}, {
		name: "separator with a comment",
		data: webService + "--- # next\n" + nodeA,
		want: &inputs{Services: []*v1.Service{web}, Nodes: []*v1.Node{storedNode("node-a")}},
	}, {
		name: "JSON",
		data: `{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}}`,
		want: &inputs{Nodes: []*v1.Node{storedNode("node-a")}},
	}, {
		name: "List items decoded, nested lists too",
		data: `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: settings}}
- apiVersion: v1
  kind: Service
  metadata: {name: web}
  spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080}]}
- null
- apiVersion: v1
  kind: List
  items:
  - {apiVersion: v1, kind: Node, metadata: {name: node-a}}
  - {apiVersion: v1, kind: Pod, metadata: {name: web-1}}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-abc, labels: {kubernetes.io/service-name: web}}
  addressType: IPv4
  ports: [{name: http, port: 8080}]
`,
		want: &inputs{
			Services: []*v1.Service{web},
			Slices:   []*discoveryv1.EndpointSlice{abc},
			Nodes:    []*v1.Node{storedNode("node-a")},
			Warnings: []string{
				"x.yaml: document 1: item 1: kind ConfigMap ignored",
				"x.yaml: document 1: item 4: item 2: kind Pod ignored",
			},
		},
	}, {
		name: "List as JSON",
		data: `{
  "apiVersion": "v1",
  "kind": "List",
  "items": [
    {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-a"}}
  ],
  "metadata": {"resourceVersion": ""}
}`,
		want: &inputs{Nodes: []*v1.Node{storedNode("node-a")}},
	}, {
		name: "typed lists",
		data: `apiVersion: v1
kind: ServiceList
items:
- metadata: {name: web}
  spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSliceList
items:
- metadata: {name: web-abc, labels: {kubernetes.io/service-name: web}}
  addressType: IPv4
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: NodeList
items: [{metadata: {name: node-a}}]
`,
		want: &inputs{
			Services: []*v1.Service{web},
			Slices:   []*discoveryv1.EndpointSlice{abc},
			Nodes:    []*v1.Node{storedNode("node-a")},
		},
	}, {
		name: "other kinds and versions ignored",
		data: `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata: {name: web-old}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: v1
kind: Endpoints
metadata: {name: web}
---
` + nodeA,
		want: &inputs{
			Nodes: []*v1.Node{storedNode("node-a")},
			Warnings: []string{
				"x.yaml: document 1: kind ConfigMap ignored",
				"x.yaml: document 2: kind Deployment ignored",
				"x.yaml: document 3: kind EndpointSlice ignored: apiVersion discovery.k8s.io/v1beta1 is not supported, only discovery.k8s.io/v1",
				"x.yaml: document 4: kind Widget ignored",
				"x.yaml: document 5: kind Endpoints ignored",
			},
		},
	}, {
		name: "unknown and duplicate fields warned",
		data: nodeA + "---\n" + webService + "  colour: blue\n  type: NodePort\n  type: ClusterIP\n",
		want: &inputs{
			Services: []*v1.Service{web},
			Nodes:    []*v1.Node{storedNode("node-a")},
			Warnings: []string{
				`x.yaml: document 2: yaml: unmarshal errors: line 9: key "type" already set in map`,
				`x.yaml: document 2: unknown field "spec.colour"`,
			},
		},
	}, {
		name: "namespaces",
		data: `apiVersion: v1
kind: Service
metadata: {name: dns, namespace: kube-system}
spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080}]}
---
` + webService + "---\n" + webSlice + `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-abc, namespace: kube-system, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Node
metadata: {name: node-a, namespace: default}
`,
		want: &inputs{
			Services: []*v1.Service{storedService("kube-system", "dns"), web},
			Slices: []*discoveryv1.EndpointSlice{abc, storedSlice("kube-system", "dns-abc", func(s *discoveryv1.EndpointSlice) {
				s.Labels = map[string]string{discoveryv1.LabelServiceName: "dns"}
			})},
			Nodes: []*v1.Node{storedNode("node-a")},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := &inputs{}
			if err := loadDocuments("x.yaml", []byte(tc.data), got); err != nil {
				t.Fatalf("loadDocuments: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("loadDocuments (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadDocumentsErrors(t *testing.T) {
	good := "apiVersion: v1\nkind: Node\nmetadata: {name: node-a}\n"
	tests := []struct {
		name string
		data string
		// want is the start of the error message; what follows is the
		// decoder's own wording.
		want string
	}{{
		name: "bad YAML",
		data: good + "---\napiVersion: v1\nkind: Node\nmetadata: {name: [\n",
		want: "bad.yaml: document 2: yaml: line 3: ",
	}, {
		name: "wrong field type",
		data: good + "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: eighty}]}\n",
		want: "bad.yaml: document 2: json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32",
	}, {
		name: "empty documents are not counted",
		data: "# header\n---\n---\n" + good + "---\n\n---\nkind: Node\n",
		want: "bad.yaml: document 2: apiVersion of kind Node is not set",
	}, {
		name: "not a mapping",
		data: "- apiVersion: v1\n  kind: Node\n",
		want: "bad.yaml: document 1: not a Kubernetes object: want a mapping with apiVersion and kind",
	}, {
		name: "no kind",
		data: "apiVersion: v1\nmetadata: {name: node-a}\n",
		want: "bad.yaml: document 1: kind is not set",
	}, {
		name: "no name",
		data: good + "---\napiVersion: v1\nkind: Node\nmetadata: {labels: {a: b}}\n",
		want: "bad.yaml: document 2: metadata.name is not set",
	}, {
		// YAMLReader finds the separator when it reads the document the
		// separator ends.
		name: "bad separator",
		data: good + "--- trailing text\n" + good,
		want: "bad.yaml: document 1: invalid Yaml document separator: trailing text",
	}, {
		name: "bad List item",
		data: "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Node, metadata: {name: node-a}}\n- {apiVersion: v1, kind: Node, metadata: {name: 5}}\n",
		want: "bad.yaml: document 1: item 2: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.name of type string",
	}, {
		name: "bad typed list item",
		data: "apiVersion: v1\nkind: NodeList\nitems: [{metadata: {name: node-a}}, {metadata: {}}]\n",
		want: "bad.yaml: document 1: item 2: metadata.name is not set",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := &inputs{Warnings: []string{"earlier"}}
			got := &inputs{Warnings: []string{"earlier"}}
			err := loadDocuments("bad.yaml", []byte(tc.data), got)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("loadDocuments error = %v, want one starting with %q", err, tc.want)
			}
			if diff := cmp.Diff(before, got); diff != "" {
				t.Errorf("loadDocuments changed its inputs on error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultService(t *testing.T) {
	nodePort := func(s *v1.Service) {
		s.Spec.Type = v1.ServiceTypeNodePort
		s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
		s.Spec.Ports[0].NodePort = 30080
	}
	loadBalancer := func(s *v1.Service) {
		nodePort(s)
		s.Spec.Type = v1.ServiceTypeLoadBalancer
		s.Spec.AllocateLoadBalancerNodePorts = ptr.To(true)
		s.Status.LoadBalancer.Ingress = []v1.LoadBalancerIngress{
			{IP: "198.51.100.7", IPMode: ptr.To(v1.LoadBalancerIPModeVIP)},
			{Hostname: "lb.example.com"},
		}
	}
	clientIP := func(timeout int32) func(*v1.Service) {
		return func(s *v1.Service) {
			s.Spec.SessionAffinity = v1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{
				ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To(timeout)},
			}
		}
	}

	// Each case names a Service as the API server stores it and what a
	// manifest for it may leave out or say otherwise; defaulting the
	// manifest must give the stored Service. Defaulting the stored Service
	// must leave it as it is.
	tests := []struct {
		name     string
		stored   *v1.Service
		manifest func(*v1.Service)
	}{{
		name:     "namespace",
		stored:   storedService("default", "web"),
		manifest: func(s *v1.Service) { s.Namespace = "" },
	}, {
		name:     "type",
		stored:   storedService("default", "web"),
		manifest: func(s *v1.Service) { s.Spec.Type = "" },
	}, {
		name:     "port protocol",
		stored:   storedService("default", "web"),
		manifest: func(s *v1.Service) { s.Spec.Ports[0].Protocol = "" },
	}, {
		name:   "port protocol UDP kept",
		stored: storedService("default", "web", func(s *v1.Service) { s.Spec.Ports[0].Protocol = v1.ProtocolUDP }),
	}, {
		name:     "target port",
		stored:   storedService("default", "web", func(s *v1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(80) }),
		manifest: func(s *v1.Service) { s.Spec.Ports[0].TargetPort = intstr.IntOrString{} },
	}, {
		name:     "target port empty name",
		stored:   storedService("default", "web", func(s *v1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(80) }),
		manifest: func(s *v1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("") },
	}, {
		name:   "target port name kept",
		stored: storedService("default", "web", func(s *v1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http") }),
	}, {
		name:     "session affinity",
		stored:   storedService("default", "web"),
		manifest: func(s *v1.Service) { s.Spec.SessionAffinity = "" },
	}, {
		name:   "session affinity None drops its config",
		stored: storedService("default", "web"),
		manifest: func(s *v1.Service) {
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](5)}}
		},
	}, {
		name:     "ClientIP without config",
		stored:   storedService("default", "web", clientIP(10800)),
		manifest: func(s *v1.Service) { s.Spec.SessionAffinityConfig = nil },
	}, {
		name:     "ClientIP without clientIP",
		stored:   storedService("default", "web", clientIP(10800)),
		manifest: func(s *v1.Service) { s.Spec.SessionAffinityConfig.ClientIP = nil },
	}, {
		name:     "ClientIP without timeout",
		stored:   storedService("default", "web", clientIP(10800)),
		manifest: func(s *v1.Service) { s.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds = nil },
	}, {
		name:   "ClientIP timeout kept",
		stored: storedService("default", "web", clientIP(600)),
	}, {
		name:     "internal traffic policy",
		stored:   storedService("default", "web"),
		manifest: func(s *v1.Service) { s.Spec.InternalTrafficPolicy = nil },
	}, {
		name: "internal traffic policy Local kept",
		stored: storedService("default", "web", func(s *v1.Service) {
			s.Spec.InternalTrafficPolicy = ptr.To(v1.ServiceInternalTrafficPolicyLocal)
		}),
	}, {
		name:   "no external traffic policy for ClusterIP",
		stored: storedService("default", "web"),
	}, {
		name:     "external traffic policy for NodePort",
		stored:   storedService("default", "web", nodePort),
		manifest: func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = "" },
	}, {
		name: "external traffic policy for ClusterIP with external IPs",
		stored: storedService("default", "web", func(s *v1.Service) {
			s.Spec.ExternalIPs = []string{"192.0.2.10"}
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyCluster
		}),
		manifest: func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = "" },
	}, {
		name:     "external traffic policy for LoadBalancer",
		stored:   storedService("default", "web", loadBalancer),
		manifest: func(s *v1.Service) { s.Spec.ExternalTrafficPolicy = "" },
	}, {
		name: "external traffic policy Local kept",
		stored: storedService("default", "web", loadBalancer, func(s *v1.Service) {
			s.Spec.ExternalTrafficPolicy = v1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 32000
		}),
	}, {
		name:     "allocate load balancer node ports",
		stored:   storedService("default", "web", loadBalancer),
		manifest: func(s *v1.Service) { s.Spec.AllocateLoadBalancerNodePorts = nil },
	}, {
		name: "allocate load balancer node ports false kept",
		stored: storedService("default", "web", loadBalancer, func(s *v1.Service) {
			s.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
		}),
	}, {
		name:     "load balancer IP mode",
		stored:   storedService("default", "web", loadBalancer),
		manifest: func(s *v1.Service) { s.Status.LoadBalancer.Ingress[0].IPMode = nil },
	}, {
		name: "load balancer IP mode Proxy kept",
		stored: storedService("default", "web", loadBalancer, func(s *v1.Service) {
			s.Status.LoadBalancer.Ingress[0].IPMode = ptr.To(v1.LoadBalancerIPModeProxy)
		}),
	}, {
		name:     "cluster IPs from cluster IP",
		stored:   storedService("default", "web"),
		manifest: func(s *v1.Service) { s.Spec.ClusterIPs = nil },
	}, {
		name:     "cluster IP from cluster IPs",
		stored:   storedService("default", "web"),
		manifest: func(s *v1.Service) { s.Spec.ClusterIP = "" },
	}, {
		name:     "IP families",
		stored:   storedService("default", "web"),
		manifest: func(s *v1.Service) { s.Spec.IPFamilies = nil },
	}, {
		name:     "IP family policy",
		stored:   storedService("default", "web"),
		manifest: func(s *v1.Service) { s.Spec.IPFamilyPolicy = nil },
	}, {
		name: "IPv6",
		stored: storedService("default", "web", func(s *v1.Service) {
			s.Spec.ClusterIP = "fd00:10:96::10"
			s.Spec.ClusterIPs = []string{"fd00:10:96::10"}
			s.Spec.IPFamilies = []v1.IPFamily{v1.IPv6Protocol}
		}),
		manifest: func(s *v1.Service) {
			s.Spec.ClusterIPs = nil
			s.Spec.IPFamilies = nil
			s.Spec.IPFamilyPolicy = nil
		},
	}, {
		name: "dual-stack",
		stored: storedService("default", "web", func(s *v1.Service) {
			s.Spec.ClusterIPs = []string{"10.96.0.10", "fd00:10:96::10"}
			s.Spec.IPFamilies = []v1.IPFamily{v1.IPv4Protocol, v1.IPv6Protocol}
			s.Spec.IPFamilyPolicy = ptr.To(v1.IPFamilyPolicyRequireDualStack)
		}),
		manifest: func(s *v1.Service) {
			s.Spec.ClusterIP = ""
			s.Spec.IPFamilies = nil
			s.Spec.IPFamilyPolicy = nil
		},
	}, {
		name: "dual-stack policy kept",
		stored: storedService("default", "web", func(s *v1.Service) {
			s.Spec.IPFamilyPolicy = ptr.To(v1.IPFamilyPolicyPreferDualStack)
		}),
	}, {
		name: "headless",
		stored: storedService("default", "web", func(s *v1.Service) {
			s.Spec.ClusterIP = v1.ClusterIPNone
			s.Spec.ClusterIPs = []string{v1.ClusterIPNone}
			s.Spec.IPFamilies = nil
		}),
		manifest: func(s *v1.Service) {
			s.Spec.ClusterIPs = nil
			s.Spec.IPFamilyPolicy = nil
		},
	}, {
		name: "cluster IP not allocated",
		stored: storedService("default", "web", func(s *v1.Service) {
			s.Spec.ClusterIP = ""
			s.Spec.ClusterIPs = nil
			s.Spec.IPFamilies = nil
		}),
		manifest: func(s *v1.Service) { s.Spec.IPFamilyPolicy = nil },
	}, {
		name: "ExternalName",
		stored: storedService("default", "web", func(s *v1.Service) {
			s.Spec = v1.ServiceSpec{
				Type:            v1.ServiceTypeExternalName,
				ExternalName:    "db.example.com",
				SessionAffinity: v1.ServiceAffinityNone,
			}
		}),
		manifest: func(s *v1.Service) { s.Spec.SessionAffinity = "" },
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.stored.DeepCopy()
			defaultService(got)
			if diff := cmp.Diff(tc.stored, got); diff != "" {
				t.Errorf("defaulting the stored Service changed it (-stored +got):\n%s", diff)
			}
			if tc.manifest == nil {
				return
			}
			got = tc.stored.DeepCopy()
			tc.manifest(got)
			defaultService(got)
			if diff := cmp.Diff(tc.stored, got); diff != "" {
				t.Errorf("defaulted manifest (-stored +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultEndpointSlice(t *testing.T) {
	tests := []struct {
		name     string
		stored   *discoveryv1.EndpointSlice
		manifest func(*discoveryv1.EndpointSlice)
	}{{
		name:     "namespace",
		stored:   storedSlice("default", "web-abc"),
		manifest: func(s *discoveryv1.EndpointSlice) { s.Namespace = "" },
	}, {
		name:     "port name",
		stored:   storedSlice("default", "web-abc", func(s *discoveryv1.EndpointSlice) { s.Ports[0].Name = ptr.To("") }),
		manifest: func(s *discoveryv1.EndpointSlice) { s.Ports[0].Name = nil },
	}, {
		name:     "port protocol",
		stored:   storedSlice("default", "web-abc"),
		manifest: func(s *discoveryv1.EndpointSlice) { s.Ports[0].Protocol = nil },
	}, {
		name:   "port protocol UDP kept",
		stored: storedSlice("default", "web-abc", func(s *discoveryv1.EndpointSlice) { s.Ports[0].Protocol = ptr.To(v1.ProtocolUDP) }),
	}, {
		name: "conditions and address type as given",
		stored: storedSlice("default", "web-abc", func(s *discoveryv1.EndpointSlice) {
			s.AddressType = discoveryv1.AddressTypeFQDN
			s.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{"db.example.com"}}}
		}),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.stored.DeepCopy()
			defaultEndpointSlice(got)
			if diff := cmp.Diff(tc.stored, got); diff != "" {
				t.Errorf("defaulting the stored EndpointSlice changed it (-stored +got):\n%s", diff)
			}
			if tc.manifest == nil {
				return
			}
			got = tc.stored.DeepCopy()
			tc.manifest(got)
			defaultEndpointSlice(got)
			if diff := cmp.Diff(tc.stored, got); diff != "" {
				t.Errorf("defaulted manifest (-stored +got):\n%s", diff)
			}
		})
	}
}

// loadSummary lists what in holds as "Kind namespace/name" lines, then its
// warnings, so that tests can compare a whole load at a glance.
func loadSummary(in *inputs) []string {
	var lines []string
	for _, s := range in.Services {
		lines = append(lines, "Service "+s.Namespace+"/"+s.Name)
	}
	for _, s := range in.Slices {
		lines = append(lines, "EndpointSlice "+s.Namespace+"/"+s.Name)
	}
	for _, n := range in.Nodes {
		lines = append(lines, "Node "+n.Name)
	}
	for _, w := range in.Warnings {
		lines = append(lines, "warning: "+w)
	}
	return lines
}

func TestLoadFiles(t *testing.T) {
	stdin := "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
	tests := []struct {
		name  string
		files []string
		want  []string
	}{{
		name:  "multi-document file",
		files: []string{"testdata/multi.yaml"},
		want: []string{
			"Service default/web",
			"EndpointSlice default/web-abc",
			"Node node-a",
			"warning: testdata/multi.yaml: document 3: kind ConfigMap ignored",
		},
	}, {
		name:  "kubectl get -o yaml List",
		files: []string{"testdata/list.yaml"},
		want: []string{
			"Service shop/web",
			"EndpointSlice shop/web-abc",
			"Node node-a",
			"warning: testdata/list.yaml: document 1: item 3: kind Pod ignored",
		},
	}, {
		name:  "several files; the last definition wins",
		files: []string{"testdata/multi.yaml", "-", "testdata/list.yaml"},
		want: []string{
			"Service default/web",
			"Service shop/web",
			"EndpointSlice default/web-abc",
			"EndpointSlice shop/web-abc",
			"Node node-a",
			"warning: testdata/multi.yaml: document 3: kind ConfigMap ignored",
			"warning: <stdin>: document 1: kind Secret ignored",
			"warning: testdata/list.yaml: document 1: item 3: kind Pod ignored",
			"warning: Node node-a is defined more than once; the last definition is used",
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadFrom(tc.files, strings.NewReader(stdin))
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if diff := cmp.Diff(tc.want, loadSummary(got)); diff != "" {
				t.Errorf("load (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("the last definition is the one kept", func(t *testing.T) {
		got, err := loadFrom([]string{"testdata/multi.yaml", "testdata/list.yaml"}, nil)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		want := storedNode("node-a", func(n *v1.Node) {
			n.Labels = map[string]string{"topology.kubernetes.io/zone": "zone-a"}
		})
		if diff := cmp.Diff([]*v1.Node{want}, got.Nodes); diff != "" {
			t.Errorf("Nodes (-want +got):\n%s", diff)
		}
	})

	t.Run("malformed document", func(t *testing.T) {
		_, err := load([]string{"testdata/multi.yaml", "testdata/bad.yaml"})
		want := "testdata/bad.yaml: document 2: json: cannot unmarshal string"
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("load error = %v, want one starting with %q", err, want)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		_, err := load([]string{"testdata/no-such-file.yaml"})
		if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "testdata/no-such-file.yaml: ") {
			t.Errorf("load error = %v, want one naming the file that wraps fs.ErrNotExist", err)
		}
	})
}

func TestLoadSample(t *testing.T) {
	in, err := load(nil)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	want := []string{
		"Service default/web",
		"Service kube-system/dns",
		"Service default/api",
		"Service default/shop",
		"Service default/empty",
		"Service default/draining",
		"Service default/internal-local",
		"Service default/ext",
		"Service default/headless",
		"EndpointSlice default/web-abc",
		"EndpointSlice default/web-def",
		"EndpointSlice kube-system/dns-7kq2x",
		"EndpointSlice default/api-m4c8d",
		"EndpointSlice default/shop-x9p2w",
		"EndpointSlice default/draining-t5v7z",
		"EndpointSlice default/internal-local-b8n3r",
		"EndpointSlice default/headless-q6w4s",
		"Node node-a",
		"warning: sample.yaml: document 19: kind ConfigMap ignored",
	}
	if diff := cmp.Diff(want, loadSummary(in)); diff != "" {
		t.Errorf("sample (-want +got):\n%s", diff)
	}

	if zone := in.Nodes[0].Labels[v1.LabelTopologyZone]; zone != "zone-a" {
		t.Errorf("node-a is in zone %q, want zone-a", zone)
	}

	services := map[string]*v1.Service{}
	for _, svc := range in.Services {
		services[svc.Namespace+"/"+svc.Name] = svc
	}
	podCIDR := netip.MustParsePrefix("10.244.0.0/16")
	seen := map[string][]string{} // address of a web endpoint -> the slices listing it
	for _, slice := range in.Slices {
		name := slice.Namespace + "/" + slice.Name
		svc := services[slice.Namespace+"/"+slice.Labels[discoveryv1.LabelServiceName]]
		if svc == nil {
			t.Errorf("%s: labelled for no Service of the sample", name)
			continue
		}
		if slice.AddressType != discoveryv1.AddressTypeIPv4 {
			t.Errorf("%s: address type %s, want IPv4", name, slice.AddressType)
		}
		_, headless := slice.Labels[v1.IsHeadlessService]
		if headless != (svc.Spec.ClusterIP == v1.ClusterIPNone) {
			t.Errorf("%s: labelled headless %v, but its Service has cluster IP %q", name, headless, svc.Spec.ClusterIP)
		}
		for _, port := range slice.Ports {
			if !hasPortNamed(svc, *port.Name) {
				t.Errorf("%s: port %q is no port of its Service", name, *port.Name)
			}
		}
		for _, ep := range slice.Endpoints {
			where := fmt.Sprintf("%s: endpoint %v", name, ep.Addresses)
			if len(ep.Addresses) != 1 || !podCIDR.Contains(netip.MustParseAddr(ep.Addresses[0])) {
				t.Errorf("%s: want one address in %s", where, podCIDR)
			}
			if ep.NodeName == nil || ep.Zone == nil {
				t.Errorf("%s: want nodeName and zone", where)
			}
			c := ep.Conditions
			if c.Ready == nil || c.Serving == nil || c.Terminating == nil {
				t.Errorf("%s: want all three conditions", where)
				continue
			}
			if svc.Name == "web" {
				seen[ep.Addresses[0]] = append(seen[ep.Addresses[0]], slice.Name)
				if *c.Ready && (ep.Hints == nil || len(ep.Hints.ForZones) != 1 || ep.Hints.ForZones[0].Name != *ep.Zone) {
					t.Errorf("%s: ready web endpoint without a hint for its zone", where)
				}
			}
		}
	}
	if diff := cmp.Diff([]string{"web-abc", "web-def"}, seen["10.244.1.9"]); diff != "" {
		t.Errorf("web endpoint 10.244.1.9 should be in both slices (-want +got):\n%s", diff)
	}
}

func hasPortNamed(svc *v1.Service, name string) bool {
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}
