package nftables_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// requireKernel skips (or, with LBKIT_E2E=1, fails) unless the test can
// program nftables: root, nft and ip.
func requireKernel(tb testing.TB) {
	tb.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"nft", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "kernel test needs " + strings.Join(missing, ", ")
	if os.Getenv("LBKIT_E2E") == "1" {
		tb.Fatal(msg + " (LBKIT_E2E=1)")
	}
	tb.Skip(msg)
}

// inThrowawayNetns creates a network namespace named lbkt-<kind>-<pid>,
// runs f on the calling goroutine's thread moved into it (commands f starts
// inherit it), and deletes the namespace. f never runs in the host's
// namespace: if entering fails, the test fails first.
func inThrowawayNetns(tb testing.TB, kind string, f func()) {
	tb.Helper()
	name := fmt.Sprintf("lbkt-%s-%d", kind, os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	defer func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	}()
	target, err := netns.GetFromName(name)
	if err != nil {
		tb.Fatalf("open netns %s: %v", name, err)
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		tb.Fatalf("open current netns: %v", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		tb.Fatalf("enter netns %s: %v", name, err)
	}
	defer func() {
		// A thread that cannot go back stays locked, and the runtime
		// discards it when the goroutine exits.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		tb.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	f()
}

// run executes a command (in the current thread's namespace) and returns
// its output, failing the test on error.
func run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func runStdin(tb testing.TB, stdin, name string, args ...string) string {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
