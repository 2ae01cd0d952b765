package healthcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lbkit/lbkit/servicemap"
)

// Options configure a Server. The zero value listens on all addresses.
type Options struct {
	// Addresses are the node addresses each health-check port is bound to,
	// one listener per address; empty means every address (one listener on
	// ":port").
	Addresses []netip.Addr
	// Listen opens a listener; nil means net.Listen. It is called with
	// network "tcp" and an address such as "10.0.0.1:32000" or ":32000".
	// Tests use it to listen on 127.0.0.1:0 instead.
	Listen func(network, addr string) (net.Listener, error)
	// NodeName names the node in errors and logs.
	NodeName string
	// ProxyHealthy, when set, reports whether the service proxy programming
	// this node is healthy (for instance a backends.Runner's
	// Health().Healthy). While it returns false every port answers 503, as
	// kube-proxy does: a node whose rules are stale should not get traffic.
	ProxyHealthy func() bool
	// Logger receives the Server's logs, including the HTTP servers'
	// errors; nil discards them.
	Logger *slog.Logger
}

// ErrClosed is returned by Sync after Close.
var ErrClosed = errors.New("healthcheck: server closed")

// Server serves health-check node ports. Create it with NewServer.
type Server struct {
	opts Options
	log  *slog.Logger

	mu       sync.RWMutex
	closed   bool
	open     map[uint16][]*http.Server // listening ports
	services map[uint16]service        // what each wanted port reports
	serving  sync.WaitGroup
}

// service is the answer of one health-check port.
type service struct {
	namespace, name string
	localEndpoints  int
}

// NewServer returns a Server with no port open; Sync opens them.
func NewServer(opts Options) *Server {
	if opts.Listen == nil {
		opts.Listen = net.Listen
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		opts:     opts,
		log:      log,
		open:     map[uint16][]*http.Server{},
		services: map[uint16]service{},
	}
}

// Sync makes the Server serve exactly the health-check ports of snap, with
// the local endpoint counts of snap. It opens the ports it lacks and closes
// those no longer wanted. A port that cannot be opened (or that two
// services claim) is reported in the returned error, and the others are
// served all the same; the next Sync tries it again.
func (s *Server) Sync(snap *servicemap.Snapshot) error {
	want, errs := s.wanted(snap)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.services = want
	for port, servers := range s.open {
		if _, ok := want[port]; !ok {
			s.log.Info("closing health check port", "port", port)
			closeAll(servers)
			delete(s.open, port)
		}
	}
	for _, port := range slices.Sorted(maps.Keys(want)) {
		if _, ok := s.open[port]; ok {
			continue
		}
		svc := want[port]
		servers, err := s.listen(port)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: health check port %d of %s/%s: %w",
				s.opts.NodeName, port, svc.namespace, svc.name, err))
			continue
		}
		s.log.Info("opened health check port", "port", port, "service", svc.namespace+"/"+svc.name)
		s.open[port] = servers
	}
	return errors.Join(errs...)
}

// wanted returns the answer of each health-check port of snap.
func (s *Server) wanted(snap *servicemap.Snapshot) (map[uint16]service, []error) {
	want := map[uint16]service{}
	local := map[uint16]map[netip.Addr]bool{}
	var errs []error
	for _, p := range snap.Ports() { // sorted: the first service by name keeps a contested port
		port := p.HealthCheckNodePort
		if port == 0 {
			continue
		}
		if svc, ok := want[port]; ok && (svc.namespace != p.Name.Namespace || svc.name != p.Name.Name) {
			errs = append(errs, fmt.Errorf("node %s: health check port %d of %s is already used by %s/%s",
				s.opts.NodeName, port, p.Name.ServiceName(), svc.namespace, svc.name))
			continue
		}
		if local[port] == nil {
			local[port] = map[netip.Addr]bool{}
		}
		for _, ep := range p.Endpoints {
			if ep.Local && ep.Ready {
				local[port][ep.Addr.Addr()] = true
			}
		}
		want[port] = service{namespace: p.Name.Namespace, name: p.Name.Name, localEndpoints: len(local[port])}
	}
	return want, errs
}

// listen opens and serves port on every bind address; on failure it closes
// what it opened.
func (s *Server) listen(port uint16) ([]*http.Server, error) {
	hosts := []string{""}
	if len(s.opts.Addresses) > 0 {
		hosts = hosts[:0]
		for _, a := range s.opts.Addresses {
			hosts = append(hosts, a.String())
		}
	}
	var servers []*http.Server
	for _, host := range hosts {
		l, err := s.opts.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			closeAll(servers)
			return nil, err
		}
		srv := &http.Server{
			Handler:           s.handler(port),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		s.serving.Go(func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("health check server stopped", "port", port, "address", l.Addr(), "err", err)
			}
		})
		servers = append(servers, srv)
	}
	return servers, nil
}

func closeAll(servers []*http.Server) error {
	var errs []error
	for _, srv := range servers {
		if err := srv.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// response is the body of an answer, field for field kube-proxy's.
type response struct {
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints      int  `json:"localEndpoints"`
	ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
}

// handler answers requests on one port with its service's health.
func (s *Server) handler(port uint16) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.RLock()
		svc, ok := s.services[port]
		s.mu.RUnlock()
		if !ok { // the port is being closed
			http.Error(w, "no service uses this health check port", http.StatusServiceUnavailable)
			return
		}
		var body response
		body.Service.Namespace, body.Service.Name = svc.namespace, svc.name
		body.LocalEndpoints = svc.localEndpoints
		body.ServiceProxyHealthy = s.opts.ProxyHealthy == nil || s.opts.ProxyHealthy()
		data, err := json.Marshal(body)
		if err != nil { // cannot happen with these field types
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		// The weight a load balancer may give this node (kube-proxy sends
		// it too): its number of local endpoints.
		w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(body.LocalEndpoints))
		if body.LocalEndpoints > 0 && body.ServiceProxyHealthy {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = w.Write(data)
	})
}

// Ports returns the health-check ports being served, sorted.
func (s *Server) Ports() []uint16 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.open))
}

// Close closes every port and waits until their servers have stopped. Sync
// fails after Close; Close may be called more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var errs []error
	for port, servers := range s.open {
		errs = append(errs, closeAll(servers))
		delete(s.open, port)
	}
	clear(s.services)
	s.mu.Unlock()
	s.serving.Wait()
	return errors.Join(errs...)
}
