//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	fakebackend "github.com/lbkit/lbkit/backends/fake"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// TestRun runs the proxy loop against a fake clientset and the fake
// backend: objects created through the API end up programmed, and a
// service labelled for another proxy does not.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := fake.NewClientset(
		servicemaptest.Service("default", "web", "10.96.0.10", []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}),
		servicemaptest.Service("default", "theirs", "10.96.0.11", []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}},
			func(s *v1.Service) { s.Labels = map[string]string{"service.kubernetes.io/service-proxy-name": "other"} }),
		servicemaptest.Slice("default", "web", "web-1", []discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)},
			[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.10", "node-a")}),
		servicemaptest.Node("node-a", "zone-a"),
	)
	b := fakebackend.New(fakebackend.Options{})
	c := config{node: "node-a", family: v1.IPv4Protocol, healthzAddr: "127.0.0.1:0", metricsAddr: freeAddr(t), minInterval: 10 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- run(ctx, c, client, b, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	waitFor(t, func() bool { return strings.Contains(b.Dump(), "10.244.1.10:8080") })
	if strings.Contains(b.Dump(), "theirs") {
		t.Errorf("service of another proxy programmed:\n%s", b.Dump())
	}
	// An endpoint added through the API reaches the data plane.
	es, _ := client.DiscoveryV1().EndpointSlices("default").Get(ctx, "web-1", metav1.GetOptions{})
	es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.244.1.11"}})
	if _, err := client.DiscoveryV1().EndpointSlices("default").Update(ctx, es, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(b.Dump(), "10.244.1.11:8080") })

	// /metrics serves lbkit's series once a sync has happened.
	var body string
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + c.metricsAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `lbkit_sync_partial_proxy_rules_duration_seconds_count{backend="fake"}`)
	})
	for _, series := range []string{
		`lbkit_sync_full_proxy_rules_duration_seconds_count{backend="fake"} 1`,
		`lbkit_sync_proxy_rules_last_timestamp_seconds{backend="fake"}`,
		`lbkit_sync_proxy_rules_last_queued_timestamp_seconds{backend="fake"}`,
		`lbkit_sync_proxy_rules_no_local_endpoints_total{ip_family="IPv4",traffic_policy="internal"} 0`,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s:\n%s", series, body)
		}
	}
	if resp, err := http.Get("http://" + c.metricsAddr + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz on the metrics address: %v, %v", resp, err)
	}
	// A node the cluster autoscaler is about to delete fails /healthz, so
	// load balancers drain it; /livez does not change.
	taint := func(taints ...v1.Taint) {
		n, err := client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Spec.Taints = taints
		if _, err := client.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	code := func(path string) int {
		resp, err := http.Get("http://" + c.metricsAddr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	taint(v1.Taint{Key: servicemap.ToBeDeletedTaint, Effect: v1.TaintEffectNoSchedule})
	waitFor(t, func() bool { return code("/healthz") == http.StatusServiceUnavailable })
	if got := code("/livez"); got != http.StatusOK {
		t.Errorf("/livez of a node tainted for deletion = %d, want 200", got)
	}
	taint()
	waitFor(t, func() bool { return code("/healthz") == http.StatusOK })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

// The first sync waits for the Tracker's event handlers, not only for the
// informers' caches: it programs every one of 3,000 services. (Waiting on
// the informers' HasSynced, it programmed 1,419 of 3,000 in 2 of 10 runs.)
func TestFirstSyncSeesTheWholeCluster(t *testing.T) {
	const n = 3000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var objs []runtime.Object
	for i := range n {
		objs = append(objs, servicemaptest.Service("default", fmt.Sprintf("s%d", i), fmt.Sprintf("10.96.%d.%d", i/250, i%250+1),
			[]v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}}))
	}
	client := fake.NewClientset(objs...)
	first := make(chan int, 1)
	b := fakebackend.New(fakebackend.Options{BeforeSync: func(_ context.Context, prev, next *servicemap.Snapshot) error {
		if prev == nil {
			select {
			case first <- next.Len():
			default:
			}
		}
		return nil
	}})
	c := config{node: "node-a", family: v1.IPv4Protocol, healthzAddr: "127.0.0.1:0", metricsAddr: freeAddr(t), minInterval: 10 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- run(ctx, c, client, b, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	select {
	case got := <-first:
		if got != n {
			t.Errorf("first sync programmed %d service ports, want %d", got, n)
		}
	case <-ctx.Done():
		t.Fatal("no sync")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
