package userspace_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/backends/userspace"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// benchBackends are the data planes compared: the proxy, and the nftables
// backend as the kernel's figure beside it.
var benchBackends = []struct {
	name string
	make func(n *backendtest.Network) (backends.Interface, error)
}{
	{"userspace", func(n *backendtest.Network) (backends.Interface, error) {
		return userspace.New(userspace.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}, userspace.Options{})
	}},
	{"nftables", func(n *backendtest.Network) (backends.Interface, error) {
		return nftables.New(nftables.Spec{ClusterCIDRs: []netip.Prefix{n.ClusterCIDR()}}, nftables.Options{})
	}},
}

// serviceOn programs one service at vip:port in front of every backend of
// n, on their port target, with the backend made by make.
func serviceOn(b *testing.B, n *backendtest.Network, make func(*backendtest.Network) (backends.Interface, error), vip netip.AddrPort, target int32) {
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	svc := servicemaptest.Service("b", "svc", vip.Addr().String(), []v1.ServicePort{servicemaptest.Port("p", int32(vip.Port()), v1.ProtocolTCP)})
	var eps []servicemaptest.Endpoint
	for _, be := range n.Pods() {
		eps = append(eps, servicemaptest.Ready(be.IP.String(), "node"))
	}
	tr.OnServiceAdd(svc)
	tr.OnEndpointSliceAdd(servicemaptest.Slice("b", "svc", "svc-1", []discoveryv1.EndpointPort{servicemaptest.SlicePort("p", target, v1.ProtocolTCP)}, eps))
	var be backends.Interface
	if err := n.InNode(func() error {
		var err error
		if be, err = make(n); err != nil {
			return err
		}
		return be.Sync(context.Background(), nil, tr.Snapshot())
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.InNode(func() error { return be.Cleanup(context.Background()) }) })
}

// BenchmarkConnect measures one TCP connection through a cluster IP
// (connect, the server's one-line answer, close), through the proxy and
// through nftables.
func BenchmarkConnect(b *testing.B) {
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			backendtest.Require(b, "ip", "nft")
			n := backendtest.NewNetwork(b, backendtest.NetworkOptions{Pods: 3})
			n.Serve(b, 8080)
			vip := netip.MustParseAddrPort("10.96.0.40:80")
			serviceOn(b, n, bb.make, vip, 8080)
			ctx := context.Background()
			for b.Loop() {
				if _, err := n.DialTCP(ctx, netip.Addr{}, vip, 2*time.Second); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStream measures the throughput of one TCP stream through a
// cluster IP: the client sends b.N chunks of 64 KiB, the endpoint counts
// them and answers the total.
func BenchmarkStream(b *testing.B) {
	const chunk = 64 << 10
	for _, bb := range benchBackends {
		b.Run(bb.name, func(b *testing.B) {
			backendtest.Require(b, "ip", "nft")
			n := backendtest.NewNetwork(b, backendtest.NetworkOptions{Pods: 1})
			be := n.Pods()[0]
			ln := listenIn(b, be.NS, netip.AddrPortFrom(be.IP, 9100).String())
			go sink(ln)
			vip := netip.MustParseAddrPort("10.96.0.41:9100")
			serviceOn(b, n, bb.make, vip, 9100)
			c := dialIn(b, n.ClientNS(), vip)
			defer c.Close()
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.(*net.TCPConn).CloseWrite()
			var total uint64
			if err := binary.Read(c, binary.BigEndian, &total); err != nil || total != uint64(b.N)*chunk {
				b.Fatalf("endpoint received %d bytes (%v), want %d", total, err, uint64(b.N)*chunk)
			}
		})
	}
}

// sink counts what each connection sends and answers the total when the
// client half-closes.
func sink(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			n, _ := io.Copy(io.Discard, c)
			binary.Write(c, binary.BigEndian, uint64(n))
		}()
	}
}
