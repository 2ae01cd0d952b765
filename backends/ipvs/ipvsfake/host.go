package ipvsfake

import (
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"github.com/lbkit/lbkit/backends/ipvs"
)

// Host is a network namespace in memory: links with addresses, the node's
// own addresses and sysctls. It implements ipvs.Host.
//
// Calls that change something are logged, one line each:
//
//	ensure-dummy lbkit-ipvs0
//	delete-dummy lbkit-ipvs0
//	add-addr lbkit-ipvs0 10.96.0.10
//	delete-addr lbkit-ipvs0 10.96.0.10
//	sysctl net/ipv4/vs/conntrack=1
//
// Listings of link addresses are not logged but counted (TakeListings).
type Host struct {
	mu        sync.Mutex
	links     map[string][]netip.Addr
	nodeAddrs []netip.Addr
	sysctls   map[string]string
	calls     calls
	listed    int // calls of LinkAddrs
}

var _ ipvs.Host = (*Host)(nil)

// NewHost returns a namespace whose node addresses (on links other than
// the ones the Backend creates) are nodeAddrs.
func NewHost(nodeAddrs ...netip.Addr) *Host {
	return &Host{links: map[string][]netip.Addr{}, nodeAddrs: slices.Clone(nodeAddrs), sysctls: map[string]string{}}
}

// FailNext makes the next call whose log line starts with prefix fail with
// err (ErrInjected when err is nil), without effect.
func (h *Host) FailNext(prefix string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls.fail = append(h.calls.fail, failure{prefix, err})
}

// TakeCalls returns the calls logged since the last TakeCalls, in order,
// and clears the log.
func (h *Host) TakeCalls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls.take()
}

// EnsureDummy creates the link if it is missing.
func (h *Host) EnsureDummy(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.calls.record("ensure-dummy %s", name); err != nil {
		return err
	}
	if _, ok := h.links[name]; !ok {
		h.links[name] = []netip.Addr{}
	}
	return nil
}

// DeleteDummy deletes the link and its addresses; a missing link is not
// an error.
func (h *Host) DeleteDummy(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.calls.record("delete-dummy %s", name); err != nil {
		return err
	}
	delete(h.links, name)
	return nil
}

// TakeListings returns how many times LinkAddrs was called since the
// last TakeListings, and resets the count.
func (h *Host) TakeListings() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.listed
	h.listed = 0
	return n
}

// LinkAddrs returns the addresses on the link, in the order they were
// added; nil when the link does not exist.
func (h *Host) LinkAddrs(name string) ([]netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.listed++
	addrs, ok := h.links[name]
	if !ok {
		return nil, nil
	}
	return slices.Clone(addrs), nil
}

// AddLinkAddr adds a to the link. It fails with ENODEV when the link does
// not exist, EEXIST when it has the address.
func (h *Host) AddLinkAddr(name string, a netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.calls.record("add-addr %s %v", name, a); err != nil {
		return err
	}
	addrs, ok := h.links[name]
	switch {
	case !ok:
		return syscall.ENODEV
	case !a.IsValid():
		return syscall.EINVAL
	case slices.Contains(addrs, a):
		return syscall.EEXIST
	}
	h.links[name] = append(addrs, a)
	return nil
}

// DeleteLinkAddr removes a from the link. It fails with ENODEV when the
// link does not exist, EADDRNOTAVAIL when it lacks the address.
func (h *Host) DeleteLinkAddr(name string, a netip.Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.calls.record("delete-addr %s %v", name, a); err != nil {
		return err
	}
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

// NodeAddrs returns the node addresses given to NewHost and the addresses
// of every link but exclude.
func (h *Host) NodeAddrs(exclude string) ([]netip.Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.nodeAddrs)
	for name, addrs := range h.links {
		if name != exclude {
			out = append(out, addrs...)
		}
	}
	return out, nil
}

// SetSysctl records value for name.
func (h *Host) SetSysctl(name, value string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.calls.record("sysctl %s=%s", name, value); err != nil {
		return err
	}
	h.sysctls[name] = value
	return nil
}

// Sysctl returns the value last set for name.
func (h *Host) Sysctl(name string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.sysctls[name]
	return v, ok
}

// HasLink reports whether the link exists.
func (h *Host) HasLink(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.links[name]
	return ok
}

// Bound returns the addresses on the link, sorted.
func (h *Host) Bound(name string) []netip.Addr {
	h.mu.Lock()
	defer h.mu.Unlock()
	addrs := slices.Clone(h.links[name])
	slices.SortFunc(addrs, netip.Addr.Compare)
	return addrs
}
