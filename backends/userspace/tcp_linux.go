//go:build linux

package userspace

import (
	"io"
	"net"
	"sync"

	"github.com/lbkit/lbkit/backends"
)

// tcpServer accepts connections on one frontend and splices each to the
// endpoint the picker chooses.
type tcpServer struct {
	b    *Backend
	key  frontendKey
	k    backends.Frontend
	ln   *net.TCPListener
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]struct{} // client and endpoint connections, closed by close
}

func (b *Backend) serveTCP(k frontendKey, kind backends.Frontend) (server, error) {
	var ln net.Listener
	err := b.ns.do(func() error {
		var err error
		ln, err = net.Listen("tcp", k.addr.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	s := &tcpServer{b: b, key: k, k: kind, ln: ln.(*net.TCPListener), open: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *tcpServer) kind() backends.Frontend { return s.k }

// prune has nothing to do: established TCP connections run until they
// end, as with the kernel backends (conntrack keeps them).
func (s *tcpServer) prune() {}

func (s *tcpServer) close() {
	s.ln.Close()
	s.mu.Lock()
	open := s.open
	s.open = nil
	s.mu.Unlock()
	for c := range open {
		c.Close()
	}
	s.wg.Wait()
}

func (s *tcpServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open == nil {
		return false
	}
	s.open[c] = struct{}{}
	return true
}

func (s *tcpServer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.open, c)
	s.mu.Unlock()
	c.Close()
}

func (s *tcpServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptTCP()
		if err != nil {
			return // closed
		}
		s.wg.Add(1)
		go s.handle(c)
	}
}

// handle forwards one client connection. A connection that may not be
// forwarded (the endpoints went away since the last sync) is reset, the
// nearest a socket that has accepted can come to a refusal.
func (s *tcpServer) handle(c *net.TCPConn) {
	defer s.wg.Done()
	if !s.track(c) {
		c.Close()
		return
	}
	defer s.untrack(c)
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
	res, err := s.b.pick(s.key, s.k, client)
	if err != nil || res.Verdict != backends.Forward {
		c.SetLinger(0)
		return
	}
	defer res.Done()
	up, err := s.b.ns.dial("tcp", res.Addr(), s.b.opts.DialTimeout)
	if err != nil {
		s.b.opts.Logger.Debug("dial endpoint", "frontend", s.key.String(), "endpoint", res.Addr(), "err", err)
		c.SetLinger(0)
		return
	}
	if !s.track(up) {
		up.Close()
		return
	}
	defer s.untrack(up)
	splice(c, up.(*net.TCPConn))
}

// splice copies both ways until both directions have ended, passing each
// end of stream on as a half close. An error either way (a reset) ends
// both.
func splice(a, b *net.TCPConn) {
	done := make(chan struct{})
	pass := func(dst, src *net.TCPConn) {
		if _, err := io.Copy(dst, src); err != nil {
			a.Close()
			b.Close()
			return
		}
		dst.CloseWrite()
	}
	go func() {
		pass(b, a)
		close(done)
	}()
	pass(a, b)
	<-done
}
