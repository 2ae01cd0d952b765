//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/netlab"
	"github.com/lbkit/lbkit/servicemap"
)

// runDemo builds a throwaway namespace network (a client, a node and three
// pods), programs one Service through the library, and shows how 300
// connections spread over the pods, then how they move when one pod stops
// being ready. Everything it creates is removed before it returns.
func runDemo(args []string, stdout io.Writer) error {
	var f backendFlags
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	f.register(fs, false)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.backend == "ipvs" {
		return fmt.Errorf("%w: demo runs nftables or iptables (IPVS needs a kernel with ip_vs; see backends/ipvs/vmtest)", errUsage)
	}
	if os.Geteuid() != 0 {
		return errors.New("demo creates network namespaces and needs root")
	}
	n, err := netlab.Open(netlab.NetworkOptions{Pods: 3, Prefix: "lbctl"})
	if n != nil {
		defer n.Close()
	}
	if err != nil {
		return err
	}
	if err := n.ServePort(8080); err != nil {
		return err
	}
	f.clusterCIDR = prefixList{n.ClusterCIDR()}
	_, b, err := f.open(false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer n.InNode(func() error { return b.Cleanup(ctx) })

	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	tr.OnServiceAdd(demoService())
	slice := demoSlice(n.Pods())
	tr.OnEndpointSliceAdd(slice)
	vip := netip.MustParseAddrPort("10.96.0.10:80")

	fmt.Fprintf(stdout, "network: client %s -> node %s (rules: %s) -> pods %s\n", n.ClientIP(), n.NodeIP(), b.Name(), podList(n.Pods()))
	fmt.Fprintf(stdout, "service default/web %s -> port 8080 on every pod\n\n", vip)
	prev, err := demoRound(ctx, stdout, n, b, nil, tr.Snapshot(), vip, "all pods ready")
	if err != nil {
		return err
	}
	notReady := slice.DeepCopy()
	notReady.Endpoints[0].Conditions.Ready = new(bool)
	tr.OnEndpointSliceUpdate(slice, notReady)
	_, err = demoRound(ctx, stdout, n, b, prev, tr.Snapshot(), vip, n.Pods()[0].Name+" not ready")
	return err
}

// demoRound syncs the backend to next and sends 300 connections to vip.
func demoRound(ctx context.Context, w io.Writer, n *netlab.Network, b backends.Interface,
	prev, next *servicemap.Snapshot, vip netip.AddrPort, title string) (*servicemap.Snapshot, error) {
	start := time.Now()
	if err := n.InNode(func() error { return b.Sync(ctx, prev, next) }); err != nil {
		return nil, err
	}
	synced := time.Since(start)
	const count = 300
	spread, err := n.Spread(ctx, vip, count, 2*time.Second)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "%s (snapshot version %d, synced in %v): %d connections\n", title, next.Version(), synced.Round(time.Millisecond), count)
	names := make([]string, 0, len(spread))
	for name := range spread {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		label := name
		if label == "" {
			label = "failed"
		}
		fmt.Fprintf(w, "  %-6s %4d  %s\n", label, spread[name], strings.Repeat("#", spread[name]/5))
	}
	fmt.Fprintln(w)
	return next, nil
}

func demoService() *v1.Service {
	return &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: v1.ServiceSpec{
			Type: v1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"},
			IPFamilies: []v1.IPFamily{v1.IPv4Protocol},
			Ports:      []v1.ServicePort{{Name: "http", Port: 80, Protocol: v1.ProtocolTCP}},
		},
	}
}

func demoSlice(pods []netlab.Pod) *discoveryv1.EndpointSlice {
	name, port, proto := "http", int32(8080), v1.ProtocolTCP
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}
	for _, p := range pods {
		node := "node"
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{p.IP.String()}, NodeName: &node})
	}
	return es
}

func podList(pods []netlab.Pod) string {
	var s []string
	for _, p := range pods {
		s = append(s, p.Name+"="+p.IP.String())
	}
	return strings.Join(s, " ")
}
