package ipvs

import (
	"cmp"
	"log/slog"
	"net/netip"
	"regexp"

	"github.com/lbkit/lbkit/backends/internal/check"
	"github.com/lbkit/lbkit/servicemap"
)

// Defaults for the zero values of Spec.
const (
	DefaultInterface      = "lbkit-ipvs0"
	DefaultScheduler      = "rr"
	DefaultTable          = "lbkit-ipvs"
	DefaultMasqueradeMark = 0x4000
	// SchedulerAnnotation is the Service annotation a proxy can map to
	// Spec.SchedulerFor (see the package documentation).
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

// Spec describes what a Backend programs, and what Render renders: pure
// data, the same on every OS. The zero value is usable.
type Spec struct {
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
	// MasqueradeAll masquerades all traffic to cluster IPs, pods' included
	// (kube-proxy's masqueradeAll).
	MasqueradeAll bool
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
	// MasqueradeMark is the packet-mark bit that asks for masquerading
	// (0x4000 when zero); one bit.
	MasqueradeMark uint32
}

var (
	// linkName is what the kernel accepts as an interface name.
	linkName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)
	// tableName is an nft identifier, which nft reads as a table's name
	// without quotes, of at most the 255 characters the kernel takes.
	tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_./-]{0,254}$`)
)

func (sp Spec) withDefaults() Spec {
	if sp.Interface == "" {
		sp.Interface = DefaultInterface
	}
	if sp.Scheduler == "" {
		sp.Scheduler = DefaultScheduler
	}
	if sp.Table == "" {
		sp.Table = DefaultTable
	}
	if sp.MasqueradeMark == 0 {
		sp.MasqueradeMark = DefaultMasqueradeMark
	}
	return sp
}

// Validate reports, with an error wrapping backends.ErrInvalidConfig, a
// spec that cannot be programmed as it says (after the defaults of its
// zero fields): an Interface the kernel would refuse, a Scheduler IPVS
// does not have, a Table nft cannot name, an invalid prefix or address, a
// MasqueradeMark of more than one bit. New checks it; Render does not, so
// its callers may.
func (sp Spec) Validate() error {
	sp = sp.withDefaults()
	invalid := func(format string, a ...any) error { return check.Invalid("ipvs", format, a...) }
	if !linkName.MatchString(sp.Interface) {
		return invalid("Spec.Interface %q is not a valid interface name", sp.Interface)
	}
	if !ValidScheduler(sp.Scheduler) {
		return invalid("Spec.Scheduler %q is not an IPVS scheduler", sp.Scheduler)
	}
	if !tableName.MatchString(sp.Table) {
		return invalid("Spec.Table %q is not an nftables table name", sp.Table)
	}
	return cmp.Or(check.Addresses("ipvs", sp.NodeIPs, sp.ClusterCIDRs, sp.NodePortAddresses),
		check.Mark("ipvs", sp.MasqueradeMark))
}

// scheduler returns the scheduler of one service port, logging an unknown
// name to log.
func (sp *Spec) scheduler(name servicemap.ServicePortName, log *slog.Logger) string {
	if sp.SchedulerFor == nil {
		return sp.Scheduler
	}
	s := sp.SchedulerFor(name)
	switch {
	case s == "":
		return sp.Scheduler
	case !ValidScheduler(s):
		log.Warn("ipvs: unknown scheduler for service port; using the default",
			"servicePort", name.String(), "scheduler", s, "default", sp.Scheduler)
		return sp.Scheduler
	}
	return s
}
