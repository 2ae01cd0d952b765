package ipvsfake

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends/ipvs"
)

// IPVS is an IPVS table in memory that answers as the kernel's does. It
// implements ipvs.Handle.
//
// Calls that change something are logged, one line each:
//
//	add 10.96.0.10:80/TCP
//	update 10.96.0.10:80/TCP
//	delete 10.96.0.10:80/TCP
//	add 10.96.0.10:80/TCP -> 10.244.1.5:8080 w1
//	update 10.96.0.10:80/TCP -> 10.244.1.5:8080 w0
//	delete 10.96.0.10:80/TCP -> 10.244.1.5:8080
//
// A call is logged, and may be failed by FailNext, before it is checked,
// so a refused call is in the log too. Listings are not logged but
// counted (TakeListings).
type IPVS struct {
	mu      sync.Mutex
	servers map[ipvs.Key]*server
	calls   calls
	// listed counts the calls of VirtualServers and RealServers.
	listedVirtual, listedReal int
}

type server struct {
	vs    ipvs.VirtualServer
	reals map[netip.AddrPort]ipvs.RealServer
}

var _ ipvs.Handle = (*IPVS)(nil)

// NewIPVS returns an empty IPVS table.
func NewIPVS() *IPVS { return &IPVS{servers: map[ipvs.Key]*server{}} }

// FailNext makes the next call whose log line starts with prefix fail with
// err (ErrInjected when err is nil), without effect. Failures queue: each
// is used once.
func (f *IPVS) FailNext(prefix string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.fail = append(f.calls.fail, failure{prefix, err})
}

// TakeCalls returns the calls logged since the last TakeCalls, in the
// order they were made, and clears the log. A Backend makes its calls in
// no particular order: sort them before comparing.
func (f *IPVS) TakeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls.take()
}

// TakeListings returns how many times VirtualServers and RealServers were
// called since the last TakeListings, and resets the counts: what a sync
// asked of the kernel, besides the changes TakeCalls shows.
func (f *IPVS) TakeListings() (virtualServers, realServers int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	virtualServers, realServers = f.listedVirtual, f.listedReal
	f.listedVirtual, f.listedReal = 0, 0
	return virtualServers, realServers
}

// checkVS refuses what the kernel refuses of a virtual server.
func checkVS(vs ipvs.VirtualServer) error {
	if !vs.Addr.IsValid() || vs.Port == 0 {
		return syscall.EINVAL
	}
	switch vs.Protocol {
	case v1.ProtocolTCP, v1.ProtocolUDP, v1.ProtocolSCTP:
	default:
		return syscall.EINVAL
	}
	if !ipvs.ValidScheduler(vs.Scheduler) {
		return syscall.ENOENT // the kernel finds no scheduler module
	}
	return nil
}

// VirtualServers lists the virtual servers, in no particular order.
func (f *IPVS) VirtualServers() ([]ipvs.VirtualServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listedVirtual++
	out := make([]ipvs.VirtualServer, 0, len(f.servers))
	for _, s := range f.servers {
		out = append(out, s.vs)
	}
	return out, nil
}

// AddVirtualServer adds vs, or fails with EEXIST.
func (f *IPVS) AddVirtualServer(vs ipvs.VirtualServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.calls.record("add %v", vs.Key()); err != nil {
		return err
	}
	if err := checkVS(vs); err != nil {
		return err
	}
	if f.servers[vs.Key()] != nil {
		return syscall.EEXIST
	}
	f.servers[vs.Key()] = &server{vs: vs, reals: map[netip.AddrPort]ipvs.RealServer{}}
	return nil
}

// UpdateVirtualServer changes the virtual server with vs's key, or fails
// with ESRCH.
func (f *IPVS) UpdateVirtualServer(vs ipvs.VirtualServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.calls.record("update %v", vs.Key()); err != nil {
		return err
	}
	if err := checkVS(vs); err != nil {
		return err
	}
	s := f.servers[vs.Key()]
	if s == nil {
		return syscall.ESRCH
	}
	s.vs = vs
	return nil
}

// DeleteVirtualServer deletes the virtual server with vs's key and its
// real servers, or fails with ESRCH.
func (f *IPVS) DeleteVirtualServer(vs ipvs.VirtualServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.calls.record("delete %v", vs.Key()); err != nil {
		return err
	}
	if f.servers[vs.Key()] == nil {
		return syscall.ESRCH
	}
	delete(f.servers, vs.Key())
	return nil
}

// server returns the virtual server rs is for, checking rs as the kernel
// does.
func (f *IPVS) server(vs ipvs.VirtualServer, rs ipvs.RealServer) (*server, error) {
	s := f.servers[vs.Key()]
	if s == nil {
		return nil, syscall.ESRCH
	}
	if !rs.Addr.IsValid() || rs.Addr.Addr().Is6() != vs.Addr.Is6() || rs.Weight < 0 {
		return nil, syscall.EINVAL
	}
	return s, nil
}

// RealServers lists the real servers of vs, in no particular order, or
// fails with ESRCH.
func (f *IPVS) RealServers(vs ipvs.VirtualServer) ([]ipvs.RealServer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listedReal++
	s := f.servers[vs.Key()]
	if s == nil {
		return nil, syscall.ESRCH
	}
	out := make([]ipvs.RealServer, 0, len(s.reals))
	for _, r := range s.reals {
		out = append(out, r)
	}
	return out, nil
}

// AddRealServer adds rs to vs, with no connections, or fails with EEXIST.
func (f *IPVS) AddRealServer(vs ipvs.VirtualServer, rs ipvs.RealServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.calls.record("add %v -> %v w%d", vs.Key(), rs.Addr, rs.Weight); err != nil {
		return err
	}
	s, err := f.server(vs, rs)
	if err != nil {
		return err
	}
	if _, ok := s.reals[rs.Addr]; ok {
		return syscall.EEXIST
	}
	s.reals[rs.Addr] = ipvs.RealServer{Addr: rs.Addr, Weight: rs.Weight, Forward: rs.Forward}
	return nil
}

// UpdateRealServer sets the weight and forwarding method of rs, keeping
// its connection counts, or fails with ENOENT.
func (f *IPVS) UpdateRealServer(vs ipvs.VirtualServer, rs ipvs.RealServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.calls.record("update %v -> %v w%d", vs.Key(), rs.Addr, rs.Weight); err != nil {
		return err
	}
	s, err := f.server(vs, rs)
	if err != nil {
		return err
	}
	old, ok := s.reals[rs.Addr]
	if !ok {
		return syscall.ENOENT
	}
	old.Weight, old.Forward = rs.Weight, rs.Forward
	s.reals[rs.Addr] = old
	return nil
}

// DeleteRealServer deletes rs from vs, or fails with ENOENT.
func (f *IPVS) DeleteRealServer(vs ipvs.VirtualServer, rs ipvs.RealServer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.calls.record("delete %v -> %v", vs.Key(), rs.Addr); err != nil {
		return err
	}
	s, err := f.server(vs, rs)
	if err != nil {
		return err
	}
	if _, ok := s.reals[rs.Addr]; !ok {
		return syscall.ENOENT
	}
	delete(s.reals, rs.Addr)
	return nil
}

// SetConns sets the connection counts of a real server, as traffic would.
// It is not logged. It fails with ESRCH or ENOENT when there is no such
// virtual or real server.
func (f *IPVS) SetConns(k ipvs.Key, rs netip.AddrPort, active, inactive int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.servers[k]
	if s == nil {
		return syscall.ESRCH
	}
	r, ok := s.reals[rs]
	if !ok {
		return syscall.ENOENT
	}
	r.ActiveConns, r.InactiveConns = active, inactive
	s.reals[rs] = r
	return nil
}

// VirtualServer returns the virtual server with key k.
func (f *IPVS) VirtualServer(k ipvs.Key) (ipvs.VirtualServer, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.servers[k]
	if s == nil {
		return ipvs.VirtualServer{}, false
	}
	return s.vs, true
}

// RealServer returns the real server at addr of the virtual server with
// key k.
func (f *IPVS) RealServer(k ipvs.Key, addr netip.AddrPort) (ipvs.RealServer, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.servers[k]
	if s == nil {
		return ipvs.RealServer{}, false
	}
	r, ok := s.reals[addr]
	return r, ok
}

// Keys returns the keys of the virtual servers, sorted by Key.Compare.
func (f *IPVS) Keys() []ipvs.Key {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keys()
}

func (f *IPVS) keys() []ipvs.Key {
	keys := make([]ipvs.Key, 0, len(f.servers))
	for k := range f.servers {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, ipvs.Key.Compare)
	return keys
}

// Dump prints the table in the format of ipvs.Render (ipvsadm -Sn's),
// sorted the same way, with the forwarding methods and weights the real
// servers have.
func (f *IPVS) Dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var w strings.Builder
	for _, k := range f.keys() {
		s := f.servers[k]
		w.WriteString(s.vs.SaveLine() + "\n")
		addrs := make([]netip.AddrPort, 0, len(s.reals))
		for a := range s.reals {
			addrs = append(addrs, a)
		}
		slices.SortFunc(addrs, netip.AddrPort.Compare)
		for _, a := range addrs {
			w.WriteString(s.reals[a].SaveLine(s.vs) + "\n")
		}
	}
	return w.String()
}
