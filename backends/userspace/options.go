package userspace

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/lbkit/lbkit/picker"
	"github.com/lbkit/lbkit/servicemap"
)

// Defaults for the zero values of Options.
const (
	DefaultLink           = "lbkit-us0"
	DefaultTable          = "lbkit-userspace"
	DefaultDialTimeout    = 5 * time.Second
	DefaultUDPIdleTimeout = 30 * time.Second
)

// Options configure a Backend. The zero value is usable.
type Options struct {
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
	// DialTimeout bounds a connection to an endpoint.
	DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP flow (client address to endpoint) after
	// this long without a datagram either way.
	UDPIdleTimeout time.Duration
	// Logger receives connection errors (debug) and sync summaries; nil
	// discards them.
	Logger *slog.Logger
}

// Policy is picker.Policy, for Options.PolicyFor.
type Policy = picker.Policy

func (o Options) withDefaults() Options {
	if o.Link == "" {
		o.Link = DefaultLink
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
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
