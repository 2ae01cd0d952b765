//go:build linux

package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lbkit/lbkit/backends/backendtest"
)

const cluster = `apiVersion: v1
kind: Service
metadata: {namespace: default, name: web}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {namespace: default, name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.244.1.10]
  conditions: {ready: true}
- addresses: [10.244.1.11]
  conditions: {ready: true}
---
apiVersion: v1
kind: Service
metadata: {namespace: default, name: empty}
spec:
  clusterIP: 10.96.0.11
  ports: [{name: http, port: 80, protocol: TCP}]
`

// TestProxiesRedirectedConnections runs meshproxy in a namespace network's
// node behind an nftables redirect of the service range: connections to a
// cluster IP spread over its endpoints, and one to a service without
// endpoints is reset.
func TestProxiesRedirectedConnections(t *testing.T) {
	backendtest.Require(t, "ip", "nft")
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 2})
	n.Serve(t, 8080)
	dir := t.TempDir()
	bin, file := filepath.Join(dir, "meshproxy"), filepath.Join(dir, "cluster.yaml")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.WriteFile(file, []byte(cluster), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := n.NodeExec("nft", "add table ip mesh; add chain ip mesh pre { type nat hook prerouting priority dstnat; };"+
		" add rule ip mesh pre ip daddr 10.96.0.0/16 tcp dport 80 redirect to :15001"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", n.NodeNS(), bin, "--fake", file, "--listen", "0.0.0.0:15001")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	ctx := context.Background()
	web := netip.MustParseAddrPort("10.96.0.10:80")
	var got map[string]int
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		if got, err = n.Spread(ctx, web, 30, 2*time.Second); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections to %v through meshproxy: %v\n%s", web, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(got) != 2 || got["b0"] < 5 || got["b1"] < 5 {
		t.Errorf("30 connections reached %v, want both endpoints, each at least 5 times", got)
	}
	if name, err := n.DialTCP(ctx, netip.Addr{}, netip.MustParseAddrPort("10.96.0.11:80"), 2*time.Second); err == nil {
		t.Errorf("a service without endpoints answered %q", name)
	}
}
