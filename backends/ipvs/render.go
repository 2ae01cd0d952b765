//go:build linux

package ipvs

import (
	"net/netip"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/servicemap"
)

// Render returns the virtual and real servers Sync programs for snap, in
// the form `ipvsadm -Sn` prints (and `ipvsadm-restore` reads):
//
//	-A -t 10.96.0.10:80 -s rr
//	-a -t 10.96.0.10:80 -r 10.244.1.10:8080 -m -w 1
//
// one -A line per virtual server, sorted by address, protocol and port,
// each followed by its real servers sorted by address. Persistent virtual
// servers (ClientIP affinity) carry -p <timeout>. Node-port virtual
// servers are on Options.NodeIPs (filtered by NodePortAddresses); Render
// never looks at the machine. Real servers that Sync keeps at weight 0
// while they drain are not part of the desired state and do not appear.
//
// Render is a pure function of its arguments: deterministic, so it can be
// compared with golden files and shown to people. Options.Logger, IPVS,
// Host and NFT are not used.
func Render(snap *servicemap.Snapshot, opts Options) string {
	opts = opts.withDefaults()
	opts.Logger = discard
	fam := familyOf(snap.IPFamily())
	p := buildPlan(snap, &opts, usableNodeIPs(fam, opts.NodeIPs, opts.NodePortAddresses), toSet(opts.NodeIPs))
	var w strings.Builder
	for _, d := range p.sortedServers() {
		svc := protoFlag(d.vs.Protocol) + " " + netip.AddrPortFrom(d.vs.Addr, d.vs.Port).String()
		w.WriteString("-A " + svc + " -s " + d.vs.Scheduler)
		if d.vs.Persistent {
			w.WriteString(" -p " + strconv.FormatUint(uint64(d.vs.Timeout), 10))
		}
		w.WriteByte('\n')
		for _, r := range d.reals {
			w.WriteString("-a " + svc + " -r " + r.String() + " -m -w 1\n")
		}
	}
	return w.String()
}

// protoFlag is ipvsadm's option for a virtual server of the protocol.
func protoFlag(p v1.Protocol) string {
	switch p {
	case v1.ProtocolUDP:
		return "-u"
	case v1.ProtocolSCTP:
		return "--sctp-service"
	}
	return "-t"
}
