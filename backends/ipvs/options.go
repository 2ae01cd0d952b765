//go:build linux

package ipvs

import (
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"

	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/servicemap"
)

// Defaults for the zero values of Options.
const (
	DefaultInterface      = "lbkit-ipvs0"
	DefaultScheduler      = "rr"
	DefaultTable          = "lbkit-ipvs"
	DefaultMasqueradeMark = 0x4000
	// SchedulerAnnotation is the Service annotation a proxy can map to
	// Options.SchedulerFor (see the package documentation).
	SchedulerAnnotation = "lbkit.io/ipvs-scheduler"
)

// schedulers are the IPVS schedulers of Linux 6.x. The kernel loads the
// module ip_vs_<name> on first use; without modprobe (as in a minimal VM)
// it must be loaded beforehand.
var schedulers = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true, "lblcr": true,
	"dh": true, "sh": true, "sed": true, "nq": true, "fo": true, "ovf": true,
	"mh": true, "twos": true,
}

// ValidScheduler reports whether name is an IPVS scheduler Linux knows.
func ValidScheduler(name string) bool { return schedulers[name] }

// Options configure a Backend and Render. The zero value is usable.
type Options struct {
	// Interface is the dummy link lbkit binds its virtual addresses to
	// ("lbkit-ipvs0" when empty). Every address on it is lbkit's: see
	// the ownership rule in the package documentation.
	Interface string
	// Scheduler is the IPVS scheduler of every virtual server ("rr" when
	// empty): rr, wrr, lc, wlc, sh, mh or another one ValidScheduler
	// accepts.
	Scheduler string
	// SchedulerFor, when set, names the scheduler of one service port; ""
	// means Scheduler. An unknown name is logged and Scheduler is used. See
	// SchedulerAnnotation for how a proxy fills it from Services.
	SchedulerFor func(servicemap.ServicePortName) string
	// ClusterCIDRs are the pod ranges. Traffic to a cluster IP from a
	// source outside them is masqueraded. Empty: cluster-IP traffic is
	// never masqueraded (kube-proxy without a cluster CIDR).
	ClusterCIDRs []netip.Prefix
	// NodePortAddresses restrict node ports to node addresses inside these
	// prefixes. Empty: every node address.
	NodePortAddresses []netip.Prefix
	// NodeIPs are the addresses node-port virtual servers are created on.
	// Empty: the non-loopback addresses of the namespace's links (but the
	// dummy one), read at every Sync. Either way, NodePortAddresses
	// filters them. Render uses NodeIPs only.
	NodeIPs []netip.Addr
	// Table is the nftables table of the netfilter half ("lbkit-ipvs" when
	// empty); its family follows the snapshot (ip or ip6).
	Table string
	// MasqueradeMark is the packet-mark bit(s) that ask for masquerading
	// (0x4000 when zero).
	MasqueradeMark uint32
	// Logger receives sync summaries (debug) and recovered problems (warn).
	// Nil discards.
	Logger *slog.Logger

	// IPVS, Host and NFT replace the kernel, for tests. Nil means the
	// real one, in the network namespace of the thread that calls New
	// (IPVS, Host) or Sync (NFT: knftables runs the nft binary). NFT
	// must be for the family of the snapshots synced.
	IPVS Handle
	Host Host
	NFT  knftables.Interface
}

// linkName is what the kernel accepts as an interface name.
var linkName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

func (o Options) withDefaults() Options {
	if o.Interface == "" {
		o.Interface = DefaultInterface
	}
	if o.Scheduler == "" {
		o.Scheduler = DefaultScheduler
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	if o.MasqueradeMark == 0 {
		o.MasqueradeMark = DefaultMasqueradeMark
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) validate() error {
	if !linkName.MatchString(o.Interface) {
		return fmt.Errorf("ipvs: Options.Interface %q is not a valid interface name", o.Interface)
	}
	if !ValidScheduler(o.Scheduler) {
		return fmt.Errorf("ipvs: Options.Scheduler %q is not an IPVS scheduler", o.Scheduler)
	}
	for _, p := range append(o.ClusterCIDRs[:len(o.ClusterCIDRs):len(o.ClusterCIDRs)], o.NodePortAddresses...) {
		if !p.IsValid() {
			return fmt.Errorf("ipvs: invalid prefix %v in Options", p)
		}
	}
	return nil
}

// scheduler returns the scheduler of one service port.
func (o *Options) scheduler(name servicemap.ServicePortName) string {
	if o.SchedulerFor == nil {
		return o.Scheduler
	}
	s := o.SchedulerFor(name)
	switch {
	case s == "":
		return o.Scheduler
	case !ValidScheduler(s):
		o.Logger.Warn("ipvs: unknown scheduler for service port; using the default",
			"servicePort", name.String(), "scheduler", s, "default", o.Scheduler)
		return o.Scheduler
	}
	return s
}
