//go:build linux

package nftables_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/nftables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// Without the nft binary, the nft transport is not supported.
func TestNewWithoutNFT(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := nftables.New(nftables.Spec{}, nftables.Options{Transport: nftables.TransportNFT})
	if !errors.Is(err, backends.ErrNotSupported) || errors.Is(err, backends.ErrPermission) {
		t.Errorf("New without nft = %v, want ErrNotSupported", err)
	}
}

// TestNewWithoutPrivilege runs New in a child process that lacks
// CAP_NET_ADMIN in the network namespace (it is root of a user namespace
// of its own only): the kernel answers EPERM, and New says ErrPermission,
// not ErrNotSupported. The child only asks to list tables.
func TestNewWithoutPrivilege(t *testing.T) {
	if os.Getenv("LBKIT_TEST_NO_PRIVILEGE") == "1" {
		_, err := nftables.New(nftables.Spec{}, nftables.Options{})
		if !errors.Is(err, backends.ErrPermission) || errors.Is(err, backends.ErrNotSupported) {
			t.Fatalf("New without CAP_NET_ADMIN = %v, want ErrPermission only", err)
		}
		fmt.Println("child checked:", err)
		return
	}
	requireKernel(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestNewWithoutPrivilege$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LBKIT_TEST_NO_PRIVILEGE=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "child checked:") {
		t.Errorf("child: %v\n%s", err, out)
	}
	t.Logf("child: %s", out)
}

// hangingNFT is a knftables interface whose transactions wait for their
// context, as a stuck nft process would until it is killed.
type hangingNFT struct{ knftables.Interface }

func (h hangingNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	<-ctx.Done()
	return ctx.Err()
}

// A Sync that runs out of time says so.
func TestSyncTimeout(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	tr.OnServiceAdd(servicemaptest.Service("ns", "web", "10.96.0.10", []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}))
	b, err := nftables.New(nftables.Spec{}, nftables.Options{NFT: hangingNFT{knftables.NewFake(knftables.IPv4Family, nftables.DefaultTable)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err = b.Sync(ctx, nil, tr.Snapshot())
	if !errors.Is(err, backends.ErrTimeout) || !errors.Is(err, backends.ErrApply) || backends.Classify(err) != backends.ClassTimeout {
		t.Errorf("Sync past its deadline = %v, want ErrApply and ErrTimeout", err)
	}
}
