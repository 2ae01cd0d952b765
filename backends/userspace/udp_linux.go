//go:build linux

package userspace

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/picker"
	"github.com/lbkit/lbkit/servicemap"
)

// udpServer serves one UDP frontend. Each client address is a flow: the
// first datagram picks an endpoint and opens a socket to it; later
// datagrams of the client follow the flow, and replies go back to the
// client from the frontend's address. A flow ends after UDPIdleTimeout
// without traffic, or at the next sync when its endpoint no longer serves
// the port (the userspace counterpart of clearing stale conntrack
// entries; see prune).
type udpServer struct {
	b    *Backend
	key  frontendKey
	k    backends.Frontend
	conn *net.UDPConn
	wg   sync.WaitGroup

	mu    sync.Mutex
	flows map[netip.AddrPort]*udpFlow
}

type udpFlow struct {
	client   netip.AddrPort
	endpoint netip.AddrPort
	up       *net.UDPConn
	res      picker.Result
	last     atomic.Int64 // unix nanoseconds of the last datagram either way
	once     sync.Once
}

const maxDatagram = 65535

func (b *Backend) serveUDP(k frontendKey, kind backends.Frontend) (server, error) {
	var c net.PacketConn
	err := b.ns.do(func() error {
		var err error
		c, err = net.ListenPacket("udp", k.addr.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	s := &udpServer{b: b, key: k, k: kind, conn: c.(*net.UDPConn), flows: map[netip.AddrPort]*udpFlow{}}
	s.wg.Add(1)
	go s.read()
	return s, nil
}

func (s *udpServer) kind() backends.Frontend { return s.k }

func (s *udpServer) read() {
	defer s.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, client, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		f := s.flow(client)
		if f == nil {
			continue // not forwarded: dropped
		}
		f.last.Store(time.Now().UnixNano())
		if _, err := f.up.Write(buf[:n]); err != nil {
			s.end(f)
		}
	}
}

// flow returns the client's flow, opening one when it has none.
func (s *udpServer) flow(client netip.AddrPort) *udpFlow {
	s.mu.Lock()
	f := s.flows[client]
	s.mu.Unlock()
	if f != nil {
		return f
	}
	res, err := s.b.pick(s.key, s.k, client.Addr())
	if err != nil || res.Verdict != backends.Forward {
		return nil
	}
	c, err := s.b.ns.dial("udp", res.Addr(), s.b.opts.DialTimeout)
	if err != nil {
		res.Done()
		s.b.opts.Logger.Debug("open UDP flow", "frontend", s.key.String(), "endpoint", res.Addr(), "err", err)
		return nil
	}
	f = &udpFlow{client: client, endpoint: res.Addr(), up: c.(*net.UDPConn), res: res}
	f.last.Store(time.Now().UnixNano())
	s.mu.Lock()
	if s.flows == nil { // closed meanwhile
		s.mu.Unlock()
		c.Close()
		res.Done()
		return nil
	}
	s.flows[client] = f
	s.mu.Unlock()
	s.wg.Add(1)
	go s.replies(f)
	return f
}

// replies copies the endpoint's datagrams back to the client until the
// flow ends.
func (s *udpServer) replies(f *udpFlow) {
	defer s.wg.Done()
	idle := s.b.opts.UDPIdleTimeout
	buf := make([]byte, maxDatagram)
	for {
		f.up.SetReadDeadline(time.Now().Add(idle))
		n, err := f.up.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, f.last.Load())) < idle {
				continue // the client is still sending
			}
			s.end(f)
			return
		}
		f.last.Store(time.Now().UnixNano())
		s.conn.WriteToUDPAddrPort(buf[:n], f.client)
	}
}

// end closes a flow and forgets it.
func (s *udpServer) end(f *udpFlow) {
	f.once.Do(func() {
		s.mu.Lock()
		if s.flows[f.client] == f {
			delete(s.flows, f.client)
		}
		s.mu.Unlock()
		f.up.Close()
		f.res.Done()
	})
}

// prune ends the flows whose endpoint no longer serves the frontend's
// service port, so their next datagram picks again. A flow keeps an
// endpoint that still serves, whatever traffic policy, topology or
// termination now choose for new flows: as the kernel backends' conntrack
// cleanup (kube-proxy's) keeps it, and as TCP connections run on.
func (s *udpServer) prune() {
	snap := s.b.picker.Snapshot()
	var p *servicemap.ServicePort
	if s.k == backends.FrontendNodePort {
		p = snap.NodePort(s.key.proto, s.key.addr.Port())
	} else {
		p, _ = snap.Frontend(s.key.proto, s.key.addr)
	}
	s.mu.Lock()
	var stale []*udpFlow
	for _, f := range s.flows {
		if p == nil || !serving(p.Endpoints, f.endpoint) {
			stale = append(stale, f)
		}
	}
	s.mu.Unlock()
	for _, f := range stale {
		s.end(f)
	}
}

// serving reports whether eps (sorted by address) holds a serving a.
func serving(eps []endpoints.Endpoint, a netip.AddrPort) bool {
	i, found := slices.BinarySearchFunc(eps, a, func(ep endpoints.Endpoint, a netip.AddrPort) int { return ep.Addr.Compare(a) })
	return found && eps[i].Serving
}

func (s *udpServer) close() {
	s.conn.Close()
	s.mu.Lock()
	flows := s.flows
	s.flows = nil
	s.mu.Unlock()
	for _, f := range flows {
		s.end(f)
	}
	s.wg.Wait()
}
