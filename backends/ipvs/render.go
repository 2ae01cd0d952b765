package ipvs

import (
	"log/slog"
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
// servers are on Spec.NodeIPs (filtered by NodePortAddresses); Render
// never looks at the machine. Real servers that Sync keeps at weight 0
// while they drain are not part of the desired state and do not appear.
//
// Render is a pure function of its arguments: deterministic, so it can be
// compared with golden files and shown to people, on any OS. spec is
// rendered as given, unchecked: its callers may call spec.Validate.
func Render(snap *servicemap.Snapshot, spec Spec) string {
	spec = spec.withDefaults()
	fam := familyOf(snap.IPFamily())
	p := buildPlan(snap, &spec, slog.New(slog.DiscardHandler), fam.NodePortIPs(spec.NodeIPs, spec.NodePortAddresses), toSet(spec.NodeIPs))
	var w strings.Builder
	for _, d := range p.sortedServers() {
		w.WriteString(d.vs.SaveLine() + "\n")
		for _, r := range d.reals {
			w.WriteString(RealServer{Addr: r, Weight: 1}.SaveLine(d.vs) + "\n")
		}
	}
	return w.String()
}
