package userspace

import "github.com/lbkit/lbkit/servicemap"

// Render returns, as text for people, what a Backend serves for snap: the
// virtual addresses on its link, every socket with the service port behind
// it and where each kind of traffic goes, and the elements of its small
// nftables table. Node ports are listed on spec.NodeIPs (a Backend looks
// its node's addresses up when they are not given). It is a pure function
// of its arguments.
func Render(snap *servicemap.Snapshot, spec Spec) string {
	s := spec.withDefaults()
	return plan(snap, &s, s.NodeIPs).text(s.Link, s.Table)
}
