//go:build linux

package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/backends/backendtest"
)

// hostileYAML is an ordinary Service (web) among hostile neighbours: one
// naming web's cluster IP as its external and load-balancer IP, one with a
// cluster IP of the other family, one with a newline in a port name, one
// with a quote in its name, and a slice with loopback and metadata
// endpoints.
const hostileYAML = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: app, creationTimestamp: "2026-01-01T00:10:00Z"}
spec: {clusterIP: %[1]s, ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: app, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: [%[2]s], conditions: {ready: true}}]
---
apiVersion: v1
kind: Service
metadata: {name: evil, namespace: other, creationTimestamp: "2026-01-01T00:00:00Z"}
spec: {type: LoadBalancer, clusterIP: %[3]s, externalIPs: [%[1]s], ports: [{name: http, port: 80}]}
status: {loadBalancer: {ingress: [{ip: %[1]s}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: evil-1, namespace: other, labels: {kubernetes.io/service-name: evil}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints: [{addresses: [%[4]s]}, {addresses: [127.0.0.1]}, {addresses: [169.254.169.254]}]
---
apiVersion: v1
kind: Service
metadata: {name: wrong-family, namespace: other}
spec: {clusterIP: "fd00::10", clusterIPs: ["fd00::10"], ipFamilies: [IPv4], ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: port-name, namespace: other}
spec: {clusterIP: %[5]s, ports: [{name: "a\nb", port: 81}]}
---
apiVersion: v1
kind: Service
metadata: {name: "quo\"ted", namespace: other}
spec: {clusterIP: %[6]s, ports: [{name: http, port: 80}]}
`

// TestApplyHostile: `lbctl apply` of a file mixing an ordinary Service with
// hostile ones exits 0, prints a warning for each skipped value, and
// programs the ordinary Service so that its cluster IP reaches its own
// endpoint only, for each kernel backend on this host.
func TestApplyHostile(t *testing.T) {
	backendtest.Require(t, "ip", "nft", "iptables")
	for _, backend := range []string{"nftables", "iptables"} {
		t.Run(backend, func(t *testing.T) {
			n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 2})
			n.Serve(t, 8080)
			be := n.Pods()
			vip := func(host int) netip.Addr {
				a := n.ServiceCIDR().Addr()
				for range host {
					a = a.Next()
				}
				return a
			}
			file := filepath.Join(t.TempDir(), "hostile.yaml")
			body := fmt.Sprintf(hostileYAML, vip(10), be[0].IP, vip(11), be[1].IP, vip(12), vip(13))
			if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			var errOut string
			var code int
			if err := n.InNode(func() error {
				_, errOut, code = runLbctl("apply", "--backend", backend, "-f", file, "--cluster-cidr", n.ClusterCIDR().String())
				return nil
			}); err != nil || code != 0 {
				t.Fatalf("lbctl apply: exit %d, %v:\n%s", code, err, errOut)
			}
			for _, want := range []string{
				"Service other/evil: external IP", "Service other/evil: load-balancer IP", "Service app/web owns it as its cluster IP",
				"Service other/wrong-family: skipped: cluster IP fd00::10",
				`Service other/port-name: port "a\nb" skipped`, `Service "other/quo\"ted": skipped`,
				"endpoint 127.0.0.1 skipped", "endpoint 169.254.169.254 skipped",
			} {
				if !strings.Contains(errOut, want) {
					t.Errorf("lbctl's warnings lack %q:\n%s", want, errOut)
				}
			}
			ctx := context.Background()
			for i := range 20 {
				got, err := n.DialTCP(ctx, netip.Addr{}, netip.AddrPortFrom(vip(10), 80), 2*time.Second)
				if err != nil || got != be[0].Name {
					t.Fatalf("connection %d to web's cluster IP: %q, %v; want %s", i, got, err, be[0].Name)
				}
			}
			if got, err := n.DialTCP(ctx, netip.Addr{}, netip.AddrPortFrom(vip(11), 80), 2*time.Second); err != nil || got != be[1].Name {
				t.Errorf("evil's own cluster IP: %q, %v; want %s", got, err, be[1].Name)
			}
		})
	}
}
