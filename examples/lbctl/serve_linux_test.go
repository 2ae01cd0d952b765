//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lbkit/lbkit/backends/backendtest"
)

// serveManifest is a Service at clusterIP:80 with one EndpointSlice of the
// given endpoints (port 8080).
func serveManifest(name, clusterIP string, endpoints ...string) string {
	var eps strings.Builder
	for _, ep := range endpoints {
		fmt.Fprintf(&eps, "- addresses: [%q]\n  conditions: {ready: true}\n  nodeName: node\n", ep)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {namespace: default, name: %[1]s}
spec:
  clusterIP: %[2]s
  ports: [{name: http, port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  namespace: default
  name: %[1]s-1
  labels: {kubernetes.io/service-name: %[1]s}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
%[3]s---
`, name, clusterIP, eps.String())
}

// lineWatcher collects a process's stderr lines.
type lineWatcher struct {
	mu    sync.Mutex
	lines []string
}

func (w *lineWatcher) add(l string) {
	w.mu.Lock()
	w.lines = append(w.lines, l)
	w.mu.Unlock()
}

func (w *lineWatcher) has(prefix string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// TestServeReloads runs `lbctl serve` in a throwaway namespace for
// nftables and for the userspace proxy, changes its file twice with
// SIGHUP, and checks after each incremental sync that real connections
// follow; SIGTERM ends it with exit 0, nftables' rules staying behind, the
// proxy no longer serving.
func TestServeReloads(t *testing.T) {
	backendtest.Require(t, "ip", "nft")
	bin := filepath.Join(t.TempDir(), "lbctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, backend := range []string{"nftables", "userspace"} {
		t.Run(backend, func(t *testing.T) {
			n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 2})
			n.Serve(t, 8080)
			bes := n.Pods()
			file := filepath.Join(t.TempDir(), "cluster.yaml")
			write := func(s string) {
				if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(serveManifest("web", "10.96.0.10", bes[0].IP.String()))

			cmd := exec.Command("ip", "netns", "exec", n.NodeNS(), bin, "serve", "--backend", backend,
				"-f", file, "--node", "node", "--cluster-cidr", n.ClusterCIDR().String())
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var w lineWatcher
			go func() {
				s := bufio.NewScanner(stderr)
				for s.Scan() {
					w.add(s.Text())
				}
			}()
			var waitErr error
			exited := make(chan struct{})
			go func() {
				waitErr = cmd.Wait()
				close(exited)
			}()
			defer func() {
				cmd.Process.Kill()
				<-exited
				n.InNode(func() error {
					_, _, _ = runLbctl("cleanup", "--backend", backend)
					return nil
				})
			}()
			waitLine := func(prefix string) {
				t.Helper()
				deadline := time.Now().Add(20 * time.Second)
				for !w.has(prefix) {
					if time.Now().After(deadline) {
						t.Fatalf("no %q from lbctl serve; it printed:\n%s", prefix, w.String())
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			reach := func(dst string) (string, error) {
				return n.DialTCP(context.Background(), netip.Addr{}, netip.MustParseAddrPort(dst), time.Second)
			}
			expect := func(dst, want string) {
				t.Helper()
				for range 5 {
					if got, err := reach(dst); err != nil || got != want {
						t.Fatalf("%s answered %q, %v; want %q\n%s", dst, got, err, want, w.String())
					}
				}
			}

			waitLine("synced version 1 (full)")
			expect("10.96.0.10:80", bes[0].Name)

			// One service's endpoint moves, another appears.
			write(serveManifest("web", "10.96.0.10", bes[1].IP.String()) +
				serveManifest("api", "10.96.0.11", bes[0].IP.String()))
			cmd.Process.Signal(syscall.SIGHUP)
			waitLine("synced version 2 (incremental)")
			expect("10.96.0.10:80", bes[1].Name)
			expect("10.96.0.11:80", bes[0].Name)

			// The first service goes.
			write(serveManifest("api", "10.96.0.11", bes[0].IP.String()))
			cmd.Process.Signal(syscall.SIGHUP)
			waitLine("synced version 3 (incremental)")
			if got, err := reach("10.96.0.10:80"); err == nil {
				t.Errorf("removed service still answered by %q", got)
			}
			expect("10.96.0.11:80", bes[0].Name)
			if w.has("synced version 2 (full)") || w.has("synced version 3 (full)") {
				t.Errorf("a reload made a full sync:\n%s", w.String())
			}

			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				if waitErr != nil {
					t.Fatalf("lbctl serve after SIGTERM: %v\n%s", waitErr, w.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatal("lbctl serve did not exit after SIGTERM")
			}
			_, err = reach("10.96.0.11:80")
			switch backend {
			case "userspace":
				if err == nil {
					t.Errorf("the proxy still serves after it exited")
				}
			default:
				if err != nil {
					t.Errorf("kernel rules should stay after lbctl serve exits: %v", err)
				}
			}
		})
	}
}
