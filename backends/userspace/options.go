package userspace

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/lbkit/lbkit/backends/internal/check"
	"github.com/lbkit/lbkit/picker"
	"github.com/lbkit/lbkit/servicemap"
)

// Defaults for the zero values of Spec and Options.
const (
	DefaultLink           = "lbkit-us0"
	DefaultTable          = "lbkit-userspace"
	DefaultDialTimeout    = 5 * time.Second
	DefaultUDPIdleTimeout = 30 * time.Second
)

// Spec describes what a Backend serves: its link and table, the addresses
// node ports are served on, the pod ranges and the balancing policy.
// Render takes a Spec alone. The zero value is usable.
type Spec struct {
	// Link is the link that carries the virtual addresses (cluster,
	// external and load-balancer IPs): a dummy link, or an empty bridge on
	// kernels without the dummy type. DefaultLink when empty.
	Link string
	// Table names the small nftables table (family ip or ip6) for what
	// sockets cannot express: DROP instead of refusing, source ranges, and
	// Local policies without a local endpoint. DefaultTable when empty.
	Table string
	// NodeIPs are the addresses node ports are served on. Empty: every
	// address of the node's other links, except loopback and link-local
	// ones, looked up at every sync.
	NodeIPs []netip.Addr
	// NodePortAddresses restrict node ports to node addresses inside these
	// prefixes. Empty: all of them. Loopback never serves node ports.
	NodePortAddresses []netip.Prefix
	// ClusterCIDRs are the pod ranges: pod clients of an
	// externalTrafficPolicy=Local address are short-circuited to every
	// endpoint, as in the kernel backends.
	ClusterCIDRs []netip.Prefix
	// Policy and PolicyFor choose the balancing policy (see
	// picker.Options).
	Policy    picker.Policy
	PolicyFor func(servicemap.ServicePortName) Policy
}

// Options say how a Backend proxies: timeouts and logging. The zero value
// is usable.
type Options struct {
	// DialTimeout bounds a connection to an endpoint (DefaultDialTimeout
	// when zero).
	DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP flow (client address to endpoint) after
	// this long without a datagram either way (DefaultUDPIdleTimeout when
	// zero).
	UDPIdleTimeout time.Duration
	// Logger receives connection errors (debug) and sync summaries; nil
	// discards them.
	Logger *slog.Logger
}

// Validate reports the first value of s that cannot mean what it says; the
// error wraps backends.ErrInvalidConfig. New calls it.
func (s Spec) Validate() error {
	if len(s.Table) > 255 {
		return invalid("Spec.Table %q is longer than 255 bytes", s.Table)
	}
	return check.Addresses("userspace", s.NodeIPs, s.ClusterCIDRs, s.NodePortAddresses)
}

func (o Options) validate() error {
	if o.DialTimeout < 0 || o.UDPIdleTimeout < 0 {
		return invalid("negative timeout in Options (DialTimeout %v, UDPIdleTimeout %v)", o.DialTimeout, o.UDPIdleTimeout)
	}
	return nil
}

func invalid(format string, args ...any) error { return check.Invalid("userspace", format, args...) }

// Policy is picker.Policy, for Spec.PolicyFor.
type Policy = picker.Policy

func (s Spec) withDefaults() Spec {
	if s.Link == "" {
		s.Link = DefaultLink
	}
	if s.Table == "" {
		s.Table = DefaultTable
	}
	return s
}

func (o Options) withDefaults() Options {
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.UDPIdleTimeout <= 0 {
		o.UDPIdleTimeout = DefaultUDPIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
