package apiserver_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lbkit/lbkit/backends/backendtest"
)

func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }

const (
	portA = 16443 // the API server the proxy watches
	portB = 16444 // a second one on the same etcd, for changes while A is down
	node  = "node"
)

// proxyRole is the ClusterRole the README documents: list and watch of the
// four kinds a node proxy reads, nothing else.
func proxyRole() *rbacv1.ClusterRole {
	return &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "lbkit-node-proxy"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services", "nodes"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"servicecidrs"}, Verbs: []string{"list", "watch"}},
		},
	}
}

// proxyToken creates the proxy's ServiceAccount, role and binding, and
// returns a token for it from the TokenRequest API.
func proxyToken(t *testing.T, ctx context.Context, c kubernetes.Interface) string {
	t.Helper()
	sa := &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "lbkit-node-proxy"}}
	if _, err := c.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, proxyRole(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "lbkit-node-proxy"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "lbkit-node-proxy"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: sa.Namespace, Name: sa.Name}},
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := c.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr[int64](3600)}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func ptr[T any](v T) *T { return &v }

// objects builds a ClusterIP Service with ports named p0.. (80, 81, ...) and
// its EndpointSlice over the Network's backends (all on port 8080, where
// they serve).
func objects(n *backendtest.Network, name, clusterIP string, ports int) (*v1.Service, *discoveryv1.EndpointSlice) {
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       v1.ServiceSpec{ClusterIP: clusterIP},
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i := range ports {
		pn := fmt.Sprintf("p%d", i)
		svc.Spec.Ports = append(svc.Spec.Ports, v1.ServicePort{Name: pn, Port: int32(80 + i), Protocol: v1.ProtocolTCP})
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr(pn), Port: ptr[int32](8080), Protocol: ptr(v1.ProtocolTCP)})
	}
	for _, be := range n.Pods() {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{be.IP.String()},
			NodeName:   ptr(node),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
		})
	}
	return svc, es
}

func create(t *testing.T, ctx context.Context, c kubernetes.Interface, svc *v1.Service, es *discoveryv1.EndpointSlice) {
	t.Helper()
	if _, err := c.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service %s: %v", svc.Name, err)
	}
	if es != nil {
		if _, err := c.DiscoveryV1().EndpointSlices(es.Namespace).Create(ctx, es, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create endpointslice %s: %v", es.Name, err)
		}
	}
}

// reaches reports whether a connection from the client to dst is answered.
func reaches(n *backendtest.Network, dst string) error {
	_, err := n.DialTCP(context.Background(), netip.Addr{}, netip.MustParseAddrPort(dst), time.Second)
	return err
}

func refused(n *backendtest.Network, dst string) error {
	_, err := n.DialTCP(context.Background(), netip.Addr{}, netip.MustParseAddrPort(dst), time.Second)
	if err == nil {
		return fmt.Errorf("%s answered", dst)
	}
	return nil
}

// programmedPorts counts the test's service ports in lbkit's nftables
// tables: one cluster-IP element per port (80 to 82; the API server's own
// "kubernetes" service, on 443 without endpoints, is left out).
func programmedPorts(t *testing.T, n *backendtest.Network) int {
	t.Helper()
	out, err := n.NodeExec("nft", "list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	return len(regexp.MustCompile(`10\.96\.\d+\.\d+ \. tcp \. 8[0-2] : goto`).FindAllString(out, -1))
}

// TestNodeProxyAgainstAPIServer runs examples/nodeproxy (nftables, in a
// namespace network) against a real kube-apiserver with etcd, as a
// ServiceAccount that may only list and watch what a proxy reads.
func TestNodeProxyAgainstAPIServer(t *testing.T) {
	backendtest.Require(t, "ip", "nft", "etcd")
	ctx := context.Background()
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{})
	n.Serve(t, 8080)
	cp := newControlPlane(t, n)
	cp.startAPIServer(portA)
	cp.startAPIServer(portB)
	admin := cp.admin(portA)
	adminB := cp.admin(portB)
	if _, err := admin.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token := proxyToken(t, ctx, admin)

	// The token lists what a proxy reads, and nothing else.
	limited, err := kubernetes.NewForConfig(cp.config(portA, token))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := limited.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		t.Fatalf("proxy token cannot list EndpointSlices: %v", err)
	}
	if _, err := limited.CoreV1().Secrets("").List(ctx, metav1.ListOptions{Limit: 1}); !apierrors.IsForbidden(err) {
		t.Fatalf("proxy token listing Secrets: %v, want Forbidden", err)
	}
	if _, err := limited.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("proxy token getting a Service: %v, want Forbidden (list and watch only)", err)
	}

	// 1,000 services of 3 ports exist before the proxy starts.
	const services, ports = 1000, 3
	start0 := time.Now()
	for i := range services {
		svc, es := objects(n, fmt.Sprintf("pre-%d", i), fmt.Sprintf("10.96.%d.%d", 10+i/250, i%250+1), ports)
		create(t, ctx, admin, svc, es)
	}
	t.Logf("created %d services (%d ports) in %v", services, services*ports, time.Since(start0).Round(time.Millisecond))

	// A long minimum interval: the first sync is the only one for a while,
	// so what the kernel holds right after it is what it programmed.
	proxy := startProxy(t, n, cp.kubeconfig(portA, token), "10s")
	waitHealthy(t, n, proxy)
	if got := programmedPorts(t, n); got != services*ports {
		t.Fatalf("the first sync programmed %d service ports, want all %d\n%s", got, services*ports, tail(proxy.out.String()))
	}
	for _, dst := range []string{"10.96.10.1:80", "10.96.11.7:82", "10.96.13.250:81"} {
		if err := reaches(n, dst); err != nil {
			t.Errorf("pre-existing service %s: %v", dst, err)
		}
	}
	proxy.stop()

	// From here on the proxy syncs quickly.
	proxy = startProxy(t, n, cp.kubeconfig(portA, token), "100ms")
	waitHealthy(t, n, proxy)

	t.Run("CreateThroughAPI", func(t *testing.T) {
		svc, es := objects(n, "web", "10.96.0.10", 1)
		create(t, ctx, admin, svc, es)
		waitFor(t, 20*time.Second, "the new service to answer", func() error { return reaches(n, "10.96.0.10:80") })
	})

	// The cluster autoscaler taints a node before deleting it: /healthz
	// turns 503 so that load balancers drain the node, and back to 200
	// when the taint goes.
	t.Run("NodeTaintedForDeletion", func(t *testing.T) {
		setTaints := func(taints []v1.Taint) {
			no, err := admin.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			no.Spec.Taints = taints
			if _, err := admin.CoreV1().Nodes().Update(ctx, no, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		setTaints([]v1.Taint{{Key: "ToBeDeletedByClusterAutoscaler", Value: "1700000000", Effect: v1.TaintEffectNoSchedule}})
		waitFor(t, 20*time.Second, "/healthz to answer 503 for a node tainted for deletion", func() error {
			if code := healthz(n); code != http.StatusServiceUnavailable {
				return fmt.Errorf("healthz answered %d", code)
			}
			return nil
		})
		if err := reaches(n, "10.96.0.10:80"); err != nil {
			t.Errorf("a node tainted for deletion still serves its services: %v", err)
		}
		setTaints(nil)
		waitHealthy(t, n, proxy)
	})

	t.Run("APIServerRestart", func(t *testing.T) {
		svc, es := objects(n, "kept", "10.96.0.20", 1)
		create(t, ctx, admin, svc, es)
		gone, goneES := objects(n, "gone", "10.96.0.21", 1)
		create(t, ctx, admin, gone, goneES)
		waitFor(t, 20*time.Second, "kept and gone to answer", func() error {
			if err := reaches(n, "10.96.0.20:80"); err != nil {
				return err
			}
			return reaches(n, "10.96.0.21:80")
		})

		cp.stopAPIServer(portA)
		// While the proxy's API server is down: nothing programmed is lost,
		// and changes go in through the other one.
		time.Sleep(2 * time.Second)
		for _, dst := range []string{"10.96.0.10:80", "10.96.0.20:80", "10.96.10.1:80"} {
			if err := reaches(n, dst); err != nil {
				t.Errorf("with the API server down, %s: %v", dst, err)
			}
		}
		added, addedES := objects(n, "added", "10.96.0.22", 1)
		create(t, ctx, adminB, added, addedES)
		if err := adminB.CoreV1().Services("default").Delete(ctx, "gone", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := adminB.DiscoveryV1().EndpointSlices("default").Delete(ctx, "gone-1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}

		cp.startAPIServer(portA)
		waitFor(t, 60*time.Second, "the changes made while the API server was down", func() error {
			if err := reaches(n, "10.96.0.22:80"); err != nil {
				return err
			}
			return refused(n, "10.96.0.21:80")
		})
		if err := reaches(n, "10.96.0.20:80"); err != nil {
			t.Errorf("after the API server came back, kept service: %v", err)
		}
		if got := programmedPorts(t, n); got != services*ports+3 {
			t.Errorf("after the restart %d service ports are programmed, want %d", got, services*ports+3)
		}
	})

	t.Run("RecreateSameName", func(t *testing.T) {
		svc, es := objects(n, "again", "10.96.0.30", 1)
		create(t, ctx, admin, svc, es)
		waitFor(t, 20*time.Second, "again to answer", func() error { return reaches(n, "10.96.0.30:80") })
		if err := admin.CoreV1().Services("default").Delete(ctx, "again", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		svc2, _ := objects(n, "again", "10.96.0.31", 2)
		create(t, ctx, admin, svc2, nil)
		// The slice stays (its controller would rewrite it); update its ports
		// to the new service's.
		_, es2 := objects(n, "again", "", 2)
		cur, err := admin.DiscoveryV1().EndpointSlices("default").Get(ctx, "again-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		es2.ResourceVersion = cur.ResourceVersion
		if _, err := admin.DiscoveryV1().EndpointSlices("default").Update(ctx, es2, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "the re-created service at its new address", func() error {
			if err := reaches(n, "10.96.0.31:81"); err != nil {
				return err
			}
			return refused(n, "10.96.0.30:80")
		})
	})

	if proxy.exited() {
		t.Errorf("the proxy exited:\n%s", tail(proxy.out.String()))
	}
}

// startProxy runs examples/nodeproxy in the node namespace.
func startProxy(t *testing.T, n *backendtest.Network, kubeconfig, minInterval string) *process {
	t.Helper()
	return start(t, n, "nodeproxy", bin.nodeproxy,
		"--kubeconfig", kubeconfig, "--node", node, "--backend", "nftables",
		"--cluster-cidr", n.ClusterCIDR().String(),
		"--healthz-addr", "127.0.0.1:10256", "--min-sync-interval", minInterval)
}

// healthz returns the status code of the proxy's /healthz, 0 when it does
// not answer.
func healthz(n *backendtest.Network) int {
	client := &http.Client{Transport: &http.Transport{DialContext: nsDial(n.NodeNS())}, Timeout: 2 * time.Second}
	resp, err := client.Get("http://127.0.0.1:10256/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitHealthy waits for the proxy's /healthz to answer 200.
func waitHealthy(t *testing.T, n *backendtest.Network, p *process) {
	t.Helper()
	waitFor(t, 60*time.Second, "the proxy's /healthz", func() error {
		if p.exited() {
			t.Fatalf("the proxy exited:\n%s", tail(p.out.String()))
		}
		client := &http.Client{Transport: &http.Transport{DialContext: nsDial(n.NodeNS())}, Timeout: 2 * time.Second}
		resp, err := client.Get("http://127.0.0.1:10256/healthz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz %s: %s", resp.Status, body)
		}
		return nil
	})
}
