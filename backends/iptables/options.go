package iptables

import (
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// DefaultLockWait is how long an iptables program waits for the xtables
// lock by default: kube-proxy's 5 seconds.
const DefaultLockWait = 5 * time.Second

// Flavour selects the iptables implementation.
type Flavour string

// Flavours of iptables. FlavourAuto asks `iptables --version` which one
// the system's default iptables is.
const (
	FlavourAuto   Flavour = ""
	FlavourNFT    Flavour = "nft"
	FlavourLegacy Flavour = "legacy"
)

// Options configure the backend and Render. The zero value is usable.
type Options struct {
	// Prefix starts the name of every chain lbkit creates ("LBKIT" by
	// default); it must be unique to this backend instance.
	Prefix string
	// ClusterCIDRs are the pod CIDRs. Traffic to a cluster IP from outside
	// them is masqueraded, and pod traffic to an external address of an
	// externalTrafficPolicy=Local service goes to cluster endpoints. Empty:
	// no source counts as a pod, as kube-proxy without a local-traffic
	// detector.
	ClusterCIDRs []netip.Prefix
	// NodePortAddresses restricts NodePorts to local addresses in these
	// CIDRs. Empty: every local address except loopback. Loopback never
	// accepts NodePorts (CVE-2020-8558).
	NodePortAddresses []netip.Prefix
	// MasqueradeMark is the mark bit that asks for masquerade (0x4000).
	MasqueradeMark uint32
	// Flavour picks iptables-nft or iptables-legacy; auto-detected when empty.
	Flavour Flavour
	// BatchSize is the number of service ports per iptables-restore in a
	// full sync with the nft flavour (100 when zero; negative: one
	// restore). iptables-nft-restore --noflush grows quadratically with its
	// input, so small batches are much faster (figures in the README). The
	// legacy flavour rewrites the whole table on every commit, so it always
	// uses one restore.
	BatchSize int
	// LockWait bounds how long each iptables program waits for the xtables
	// lock another program holds (-w, in whole seconds, rounded up):
	// DefaultLockWait when zero. A sync never waits without a bound; one
	// that gives up fails with backends.ErrTimeout and is retried.
	LockWait time.Duration
	// Exec runs the iptables programs; nil runs them for real. Tests pass a
	// fake.
	Exec Executor
	// Logger receives debug and error messages; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = "LBKIT"
	}
	o.Prefix = strings.TrimSuffix(o.Prefix, "-")
	if o.BatchSize == 0 {
		o.BatchSize = 100
	}
	if o.MasqueradeMark == 0 {
		o.MasqueradeMark = 0x4000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LockWait <= 0 {
		o.LockWait = DefaultLockWait
	}
	return o
}

// wait returns the -w argument and its value in whole seconds.
func (o *Options) wait() []string {
	secs := max(1, int((o.LockWait+time.Second-1)/time.Second))
	return []string{"-w", strconv.Itoa(secs)}
}
