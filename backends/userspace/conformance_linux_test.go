package userspace_test

import (
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/userspace"
)

// TestConformance runs the real-packet conformance suite against the
// userspace proxy. Every scenario applies; in Restart the first proxy is
// closed before the second is made, as a restarted process's sockets are
// gone while its link and table stay.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	last := map[*backendtest.Network]*userspace.Backend{}
	backendtest.Run(t, func(t *testing.T, n *backendtest.Network) backends.Interface {
		mu.Lock()
		defer mu.Unlock()
		if old := last[n]; old != nil {
			old.Close()
		}
		b, err := userspace.New(userspace.Spec{
			ClusterCIDRs:      n.ClusterCIDRs(),
			NodePortAddresses: n.NodePortAddresses(),
		}, userspace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		last[n] = b
		return b
	}, backendtest.SuiteOptions{Leftovers: leftovers, IgnoreSource: true})
}

// leftovers lists the proxy's link and tables in the current namespace.
func leftovers() (string, error) {
	var out []string
	if l, err := exec.Command("ip", "-o", "link", "show", userspace.DefaultLink).CombinedOutput(); err == nil {
		out = append(out, strings.TrimSpace(string(l)))
	}
	for _, fam := range []string{"ip", "ip6"} {
		if tbl, err := exec.Command("nft", "list", "table", fam, userspace.DefaultTable).CombinedOutput(); err == nil {
			out = append(out, string(tbl))
		}
	}
	return strings.Join(out, "\n"), nil
}
