//go:build linux

package ipvs

import (
	"strings"

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
		w.WriteString(d.vs.SaveLine() + "\n")
		for _, r := range d.reals {
			w.WriteString(RealServer{Addr: r, Weight: 1}.SaveLine(d.vs) + "\n")
		}
	}
	return w.String()
}
