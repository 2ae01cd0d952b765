//go:build linux

package ipvs_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends/ipvs"
)

// fakeIPVS is an IPVS table that behaves like the kernel's: adding what
// exists fails with EEXIST, touching what does not with ESRCH (virtual
// server) or ENOENT (real server), lists return copies. It logs every call
// that changes something, so tests can assert that a sync touched only
// what changed.
type fakeIPVS struct {
	servers map[ipvs.Key]*fakeServer
	calls   []string
	// fail makes the next call whose log line starts with it fail, with
	// failErr when set.
	fail    string
	failErr error
}

type fakeServer struct {
	vs    ipvs.VirtualServer
	reals map[netip.AddrPort]ipvs.RealServer
}

func newFakeIPVS() *fakeIPVS { return &fakeIPVS{servers: map[ipvs.Key]*fakeServer{}} }

var _ ipvs.Handle = (*fakeIPVS)(nil)

func (f *fakeIPVS) log(format string, args ...any) error {
	call := fmt.Sprintf(format, args...)
	f.calls = append(f.calls, call)
	if f.fail != "" && strings.HasPrefix(call, f.fail) {
		f.fail = ""
		if f.failErr != nil {
			return f.failErr
		}
		return fmt.Errorf("injected failure of %q", call)
	}
	return nil
}

// takeCalls returns the calls logged since the last takeCalls, sorted.
func (f *fakeIPVS) takeCalls() []string {
	out := f.calls
	f.calls = nil
	slices.Sort(out)
	return out
}

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
		return syscall.ENOENT // the kernel cannot find the scheduler module
	}
	return nil
}

func (f *fakeIPVS) VirtualServers() ([]ipvs.VirtualServer, error) {
	out := make([]ipvs.VirtualServer, 0, len(f.servers))
	for _, s := range f.servers {
		out = append(out, s.vs)
	}
	return out, nil
}

func (f *fakeIPVS) AddVirtualServer(vs ipvs.VirtualServer) error {
	if err := f.log("add %v", vs.Key()); err != nil {
		return err
	}
	if err := checkVS(vs); err != nil {
		return err
	}
	if f.servers[vs.Key()] != nil {
		return syscall.EEXIST
	}
	f.servers[vs.Key()] = &fakeServer{vs: vs, reals: map[netip.AddrPort]ipvs.RealServer{}}
	return nil
}

func (f *fakeIPVS) UpdateVirtualServer(vs ipvs.VirtualServer) error {
	if err := f.log("update %v", vs.Key()); err != nil {
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

func (f *fakeIPVS) DeleteVirtualServer(vs ipvs.VirtualServer) error {
	if err := f.log("delete %v", vs.Key()); err != nil {
		return err
	}
	if f.servers[vs.Key()] == nil {
		return syscall.ESRCH
	}
	delete(f.servers, vs.Key())
	return nil
}

func (f *fakeIPVS) server(vs ipvs.VirtualServer, rs ipvs.RealServer) (*fakeServer, error) {
	s := f.servers[vs.Key()]
	if s == nil {
		return nil, syscall.ESRCH
	}
	if rs.Addr.Addr().Is6() != vs.Addr.Is6() || rs.Weight < 0 {
		return nil, syscall.EINVAL
	}
	return s, nil
}

func (f *fakeIPVS) RealServers(vs ipvs.VirtualServer) ([]ipvs.RealServer, error) {
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

func (f *fakeIPVS) AddRealServer(vs ipvs.VirtualServer, rs ipvs.RealServer) error {
	if err := f.log("add %v -> %v w%d", vs.Key(), rs.Addr, rs.Weight); err != nil {
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

func (f *fakeIPVS) UpdateRealServer(vs ipvs.VirtualServer, rs ipvs.RealServer) error {
	if err := f.log("update %v -> %v w%d", vs.Key(), rs.Addr, rs.Weight); err != nil {
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
	old.Weight, old.Forward = rs.Weight, rs.Forward // counters stay
	s.reals[rs.Addr] = old
	return nil
}

func (f *fakeIPVS) DeleteRealServer(vs ipvs.VirtualServer, rs ipvs.RealServer) error {
	if err := f.log("delete %v -> %v", vs.Key(), rs.Addr); err != nil {
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

// setConns sets the connection counters of a real server, as traffic
// would.
func (f *fakeIPVS) setConns(k ipvs.Key, rs netip.AddrPort, active, inactive int) {
	r := f.servers[k].reals[rs]
	r.ActiveConns, r.InactiveConns = active, inactive
	f.servers[k].reals[rs] = r
}

// Dump prints the table as Render does, with actual weights.
func (f *fakeIPVS) Dump() string {
	keys := make([]ipvs.Key, 0, len(f.servers))
	for k := range f.servers {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, ipvs.Key.Compare)
	var w strings.Builder
	for _, k := range keys {
		s := f.servers[k]
		flag := map[v1.Protocol]string{v1.ProtocolTCP: "-t", v1.ProtocolUDP: "-u", v1.ProtocolSCTP: "--sctp-service"}[k.Protocol]
		svc := flag + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
		w.WriteString("-A " + svc + " -s " + s.vs.Scheduler)
		if s.vs.Persistent {
			w.WriteString(" -p " + strconv.Itoa(int(s.vs.Timeout)))
		}
		w.WriteByte('\n')
		addrs := make([]netip.AddrPort, 0, len(s.reals))
		for a := range s.reals {
			addrs = append(addrs, a)
		}
		slices.SortFunc(addrs, netip.AddrPort.Compare)
		for _, a := range addrs {
			fmt.Fprintf(&w, "-a %s -r %v -m -w %d\n", svc, a, s.reals[a].Weight)
		}
	}
	return w.String()
}

// fakeHost is a network namespace with dummy links, the node's own
// addresses and sysctls.
type fakeHost struct {
	links     map[string][]netip.Addr
	nodeAddrs []netip.Addr
	sysctls   map[string]string
}

func newFakeHost(nodeAddrs ...string) *fakeHost {
	h := &fakeHost{links: map[string][]netip.Addr{}, sysctls: map[string]string{}}
	for _, a := range nodeAddrs {
		h.nodeAddrs = append(h.nodeAddrs, netip.MustParseAddr(a))
	}
	return h
}

var _ ipvs.Host = (*fakeHost)(nil)

func (h *fakeHost) EnsureDummy(name string) error {
	if _, ok := h.links[name]; !ok {
		h.links[name] = []netip.Addr{}
	}
	return nil
}

func (h *fakeHost) DeleteDummy(name string) error {
	delete(h.links, name)
	return nil
}

func (h *fakeHost) LinkAddrs(name string) ([]netip.Addr, error) {
	addrs, ok := h.links[name]
	if !ok {
		return nil, nil
	}
	return slices.Clone(addrs), nil
}

func (h *fakeHost) AddLinkAddr(name string, a netip.Addr) error {
	addrs, ok := h.links[name]
	if !ok {
		return syscall.ENODEV
	}
	if slices.Contains(addrs, a) {
		return syscall.EEXIST
	}
	h.links[name] = append(addrs, a)
	return nil
}

func (h *fakeHost) DeleteLinkAddr(name string, a netip.Addr) error {
	addrs, ok := h.links[name]
	if !ok {
		return syscall.ENODEV
	}
	i := slices.Index(addrs, a)
	if i < 0 {
		return syscall.EADDRNOTAVAIL
	}
	h.links[name] = slices.Delete(addrs, i, i+1)
	return nil
}

func (h *fakeHost) NodeAddrs(exclude string) ([]netip.Addr, error) {
	out := slices.Clone(h.nodeAddrs)
	for name, addrs := range h.links {
		if name != exclude {
			out = append(out, addrs...)
		}
	}
	return out, nil
}

func (h *fakeHost) SetSysctl(name, value string) error {
	h.sysctls[name] = value
	return nil
}

// bound returns the addresses on a link, sorted, as text.
func (h *fakeHost) bound(name string) string {
	addrs := slices.Clone(h.links[name])
	slices.SortFunc(addrs, netip.Addr.Compare)
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}
