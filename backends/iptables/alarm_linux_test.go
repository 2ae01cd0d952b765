//go:build linux

package iptables_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/backends/backendtest"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// stallingExec runs the programs for real, but input that comes through a
// pipe (any reader but a file) pauses for stall after its first read: a
// writer starved by a loaded machine, as when BenchmarkKernelScale found
// this at 44,000 services.
type stallingExec struct{ stall time.Duration }

func (e stallingExec) Run(ctx context.Context, program string, args []string, stdin io.Reader) ([]byte, error) {
	cmd := exec.CommandContext(ctx, program, args...)
	switch in := stdin.(type) {
	case *os.File:
		cmd.Stdin = in
	case nil:
	default:
		cmd.Stdin = &stallingReader{r: in, stall: e.stall}
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w: %s", program, err, errOut.String())
	}
	return out.Bytes(), nil
}

// stallingReader hands out its input 256 bytes at a time and sleeps for
// stall before the second piece, so the program is waiting in a read when
// its lock alarm goes off.
type stallingReader struct {
	r     io.Reader
	stall time.Duration
	reads int
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if s.reads == 1 {
		time.Sleep(s.stall)
	}
	s.reads++
	return s.r.Read(p[:min(len(p), 256)])
}

// TestLegacyRestoreOutlastsLockAlarm: legacy iptables-restore, told to
// wait for the xtables lock for LockWait, is interrupted by its own alarm
// that long after it starts. Reading from a pipe, it then took its input
// for complete: it failed with "COMMIT expected", or exited 0 having
// applied only the filter table. The backend gives it a file, which the
// alarm cannot cut short: the whole ruleset lands, nat included.
func TestLegacyRestoreOutlastsLockAlarm(t *testing.T) {
	backendtest.Require(t, "ip", "iptables-legacy-restore")
	n := backendtest.NewNetwork(t, backendtest.NetworkOptions{Pods: 1})
	b, err := iptables.New(iptables.Spec{}, iptables.Options{Flavour: iptables.FlavourLegacy, LockWait: time.Second, Exec: stallingExec{stall: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node"})
	tr.OnServiceAdd(servicemaptest.Service("default", "web", "10.96.0.10", []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	tr.OnServiceAdd(servicemaptest.Service("default", "empty", "10.96.0.11", []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	tr.OnEndpointSliceAdd(servicemaptest.Slice("default", "web", "web-1",
		[]discoveryv1.EndpointPort{servicemaptest.SlicePort("http", 8080, v1.ProtocolTCP)},
		[]servicemaptest.Endpoint{servicemaptest.Ready("10.244.1.10", "node")}))
	snap := tr.Snapshot()
	if err := n.InNode(func() error { return b.Sync(context.Background(), nil, snap) }); err != nil {
		t.Fatalf("full sync: %v", err)
	}
	for table, want := range map[string]string{
		"filter": `"default/empty:http has no endpoints"`,
		"nat":    "--to-destination 10.244.1.10:8080",
	} {
		out, err := n.NodeExec("iptables-legacy-save", "-t", table)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, want) {
			t.Errorf("table %s lacks %s after a sync that reported success:\n%s", table, want, out)
		}
	}
}
