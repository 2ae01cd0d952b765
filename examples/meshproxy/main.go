//go:build linux

// Command meshproxy is a per-node L4 proxy for a service mesh, built on
// lbkit's picker: connections to Service addresses are redirected to it
// (an nftables "redirect" on the node), it reads each one's original
// destination, picks an endpoint with the kernel backends' decisions, and
// splices the connection to it.
//
//	meshproxy --kubeconfig ~/.kube/config --node $(hostname) --listen 127.0.0.1:15001
//	meshproxy --fake cluster.yaml --listen 127.0.0.1:15001   # a fake clientset, for trying it out
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"unsafe"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/lbkit/lbkit/picker"
	"github.com/lbkit/lbkit/servicemap"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster")
	fakeFile := flag.String("fake", "", "serve the objects of this YAML file through a fake clientset instead")
	node := flag.String("node", os.Getenv("NODE_NAME"), "this node's name")
	listen := flag.String("listen", "127.0.0.1:15001", "where redirected connections arrive")
	policy := flag.String("policy", "round-robin", "round-robin, random, least-request or maglev")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*kubeconfig, *fakeFile, *node, *listen, *policy, log); err != nil {
		log.Error("meshproxy", "err", err)
		os.Exit(1)
	}
}

func run(kubeconfig, fakeFile, node, listen, policyName string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	client, err := clientset(kubeconfig, fakeFile)
	if err != nil {
		return err
	}
	policy, ok := picker.ParsePolicy(policyName)
	if !ok {
		return fmt.Errorf("unknown policy %q", policyName)
	}
	tr := servicemap.NewTracker(servicemap.Options{NodeName: node})
	factory := informers.NewSharedInformerFactory(client, 0)
	regs := []cache.ResourceEventHandlerRegistration{}
	for inf, h := range map[cache.SharedIndexInformer]cache.ResourceEventHandler{
		factory.Core().V1().Services().Informer():            tr.ServiceHandler(),
		factory.Discovery().V1().EndpointSlices().Informer(): tr.EndpointSliceHandler(),
		factory.Core().V1().Nodes().Informer():               tr.NodeHandler(),
	} {
		reg, err := inf.AddEventHandler(h)
		if err != nil {
			return err
		}
		regs = append(regs, reg)
	}
	factory.Start(ctx.Done())
	for _, r := range regs { // the handlers have seen the whole listing
		cache.WaitForCacheSync(ctx.Done(), r.HasSynced)
	}
	p := picker.New(nil, picker.Options{Policy: policy})
	go p.Run(ctx, tr)

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	log.Info("proxying", "listen", listen, "policy", policy)
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil // closed at shutdown
		}
		go proxy(p, c.(*net.TCPConn), log)
	}
}

// proxy forwards one redirected connection to the endpoint the picker
// chooses for its original destination; a connection with nowhere to go is
// reset.
func proxy(p *picker.Picker, c *net.TCPConn, log *slog.Logger) {
	defer c.Close()
	dst, err := originalDst(c)
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
	res, perr := p.PickFrontend(v1.ProtocolTCP, dst, picker.Request{Client: client})
	if err != nil || perr != nil || res.Addr() == (netip.AddrPort{}) {
		log.Debug("refused", "dst", dst, "err", err, "pick", perr, "verdict", res.Verdict)
		c.SetLinger(0)
		return
	}
	defer res.Done()
	up, err := net.Dial("tcp", res.Addr().String())
	if err != nil {
		c.SetLinger(0)
		return
	}
	defer up.Close()
	go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
	io.Copy(c, up)
}

// originalDst reads the destination a connection had before the node's
// redirect rule sent it here (SO_ORIGINAL_DST, IPv4).
func originalDst(c *net.TCPConn) (netip.AddrPort, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var sa syscall.RawSockaddrInet4
	var serr error
	err = raw.Control(func(fd uintptr) {
		size := uint32(unsafe.Sizeof(sa))
		const soOriginalDst = 80
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.SOL_IP, soOriginalDst,
			uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&size)), 0)
		if errno != 0 {
			serr = errno
		}
	})
	if err != nil || serr != nil {
		return netip.AddrPort{}, os.NewSyscallError("getsockopt SO_ORIGINAL_DST", serr)
	}
	port := uint16(sa.Port>>8 | sa.Port<<8) // network byte order
	return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port), nil
}
