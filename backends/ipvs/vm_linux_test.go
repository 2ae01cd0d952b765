//go:build linux

package ipvs_test

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// vmTimeout bounds the VM run when the test has no deadline, or a later
// one. Measured: the whole in-guest run takes 2 to 2.5 minutes of software
// emulation on 2 cores.
const vmTimeout = 15 * time.Minute

// TestIPVSInVM runs this package's tests inside a qemu VM with Debian's
// kernel, which has IPVS (the host kernel may not): vmtest/run.sh builds
// the test binary, boots it with LBKIT_IN_VM=1 and LBKIT_E2E=1, and reports
// the guest's result, which this test turns into its own: the guest's
// failures are its failure message. It skips when qemu, a kernel with IPVS
// modules or busybox-static is missing, and fails instead under
// LBKIT_E2E=1; -short skips it unless LBKIT_E2E=1. Inside the VM it skips,
// and the tests it runs there (TestIPVS*) run for real.
func TestIPVSInVM(t *testing.T) {
	if inVM() {
		t.Skip("inside the VM: TestIPVSInVM only starts it")
	}
	e2e := os.Getenv("LBKIT_E2E") == "1"
	if testing.Short() && !e2e {
		t.Skip("-short: the VM run takes minutes")
	}
	if missing := vmPrerequisites(); len(missing) > 0 {
		msg := "TestIPVSInVM needs " + strings.Join(missing, ", ")
		if e2e {
			t.Fatal(msg + " (LBKIT_E2E=1 makes this a failure)")
		}
		t.Skip(msg + " (set LBKIT_E2E=1 to fail instead)")
	}

	timeout := vmTimeout
	if d, ok := t.Deadline(); ok {
		// Leave time to build the test binary and to report.
		timeout = min(timeout, time.Until(d)-90*time.Second)
		if timeout < 3*time.Minute {
			t.Fatalf("only %v left before the test deadline; the VM needs minutes (go test -timeout 20m)", time.Until(d).Round(time.Second))
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout+90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join("vmtest", "run.sh"))
	cmd.Env = append(os.Environ(),
		"OUT="+t.TempDir(),
		"VM_TIMEOUT="+strconv.Itoa(int(timeout.Seconds())),
		// Only the outer run decides these.
		"LBKIT_IN_VM=", "TEST_RUN=")
	// The script and qemu in a process group of their own, all killed if
	// the context ends first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start vmtest/run.sh: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		lines = append(lines, line)
		t.Log(line) // streams with -v
	}
	err = cmd.Wait()
	t.Logf("vmtest/run.sh took %v", time.Since(start).Round(100*time.Millisecond))

	result, failures := guestResult(lines)
	var exit *exec.ExitError
	switch {
	case err == nil && result == "PASS":
		// A pass counts only if the suite really ran in both families.
		if missing := missingPasses(lines, guestMustPass); len(missing) > 0 {
			t.Fatalf("the VM passed, but these tests did not pass in it: %s", strings.Join(missing, ", "))
		}
		return
	case errors.As(err, &exit) && exit.ExitCode() == 3:
		msg := "vmtest/run.sh: a prerequisite is missing:\n" + tail(lines, 5)
		if e2e {
			t.Fatal(msg)
		}
		t.Skip(msg)
	case strings.HasPrefix(result, "FAIL"):
		t.Fatalf("the tests inside the VM failed (%s):\n%s", result, failures)
	default:
		t.Fatalf("the VM gave no result (run.sh: %v); last lines:\n%s", err, tail(lines, 40))
	}
}

// guestMustPass are the tests the guest must report as passed (not
// skipped, not missing) for its PASS to count.
var guestMustPass = []string{
	"TestIPVSConformance",
	"TestIPVSConformance/IPv4",
	"TestIPVSConformance/IPv6",
	"TestIPVSConformance/IPv6/NodePort",
	"TestIPVSConformance/IPv6/NodePortAddresses/NodeAddresses",
	"TestIPVSConformance/IPv4/PodToClusterIP",
	"TestIPVSConformance/IPv4/MasqueradeAll/PodToClusterIP",
	"TestIPVSConformance/IPv6/MasqueradeAll/ClusterIPSpread",
}

// missingPasses returns the tests of want that no "--- PASS" line of the
// console names.
func missingPasses(lines, want []string) []string {
	passed := map[string]bool{}
	for _, line := range lines {
		if m := passLine.FindStringSubmatch(line); m != nil {
			passed[m[1]] = true
		}
	}
	var missing []string
	for _, name := range want {
		if !passed[name] {
			missing = append(missing, name)
		}
	}
	return missing
}

// vmPrerequisites lists what the host lacks for vmtest/run.sh.
func vmPrerequisites() []string {
	var missing []string
	for _, tool := range []string{"qemu-system-x86_64", "bash", "cpio", "gzip", "go", "ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%q on PATH", tool))
		}
	}
	if !slices.ContainsFunc([]string{"/bin/busybox", "/usr/bin/busybox"}, isStatic) {
		missing = append(missing, "a static busybox (package busybox-static)")
	}
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	found := false
	for _, k := range kernels {
		ver := strings.TrimPrefix(k, "/boot/vmlinuz-")
		mods, _ := filepath.Glob("/lib/modules/" + ver + "/kernel/net/netfilter/ipvs/ip_vs.ko*")
		if f, err := os.Open(k); err == nil && len(mods) > 0 {
			f.Close()
			found = true
		}
	}
	if !found {
		missing = append(missing, "a readable /boot/vmlinuz-* with IPVS modules (package linux-image-amd64; root)")
	}
	return missing
}

// isStatic reports whether path is an ELF executable without an
// interpreter.
func isStatic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

var (
	resultLine = regexp.MustCompile(`LBKIT-VM-RESULT: (PASS|FAIL.*)$`)
	testLine   = regexp.MustCompile(`^=== (?:RUN|NAME|CONT|PAUSE)\s+(\S+)`)
	failLine   = regexp.MustCompile(`^\s*--- FAIL: (\S+)`)
	passLine   = regexp.MustCompile(`^\s*--- PASS: (\S+)`)
	logLine    = regexp.MustCompile(`^\s+\S+\.go:\d+: `)
)

// guestResult reads the guest's console: the result line's verdict, and
// for a failure, each failed test with the lines it logged.
func guestResult(lines []string) (result, failures string) {
	logs := map[string][]string{}
	var current string
	var failed []string
	for i, line := range lines {
		if m := resultLine.FindStringSubmatch(line); m != nil {
			result = strings.TrimSpace(m[1])
			continue
		}
		if m := testLine.FindStringSubmatch(line); m != nil {
			current = m[1]
			continue
		}
		if m := failLine.FindStringSubmatch(line); m != nil {
			failed = append(failed, m[1])
			continue
		}
		if current != "" && (logLine.MatchString(line) ||
			// continuation lines of a multi-line log message
			(strings.HasPrefix(line, "        ") && i > 0 && len(logs[current]) > 0)) {
			logs[current] = append(logs[current], line)
		}
	}
	var b strings.Builder
	for _, name := range failed {
		fmt.Fprintf(&b, "--- FAIL: %s\n", name)
		msgs := logs[name]
		if len(msgs) > 30 {
			msgs = append(msgs[:30:30], fmt.Sprintf("        ... %d more lines in the log above", len(logs[name])-30))
		}
		for _, m := range msgs {
			b.WriteString(m + "\n")
		}
	}
	return result, b.String()
}

func tail(lines []string, n int) string {
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestGuestResult checks that a failure inside the VM reaches go test with
// what failed and why.
func TestGuestResult(t *testing.T) {
	console := `LBKIT-VM: booted in 3.1s (guest clock)
=== RUN   TestIPVSConformance
=== RUN   TestIPVSConformance/NodePort
    scenarios.go:211: TCP node port: answers map[b0:60]; want exactly the backends of map[b0:1 b1:1 b2:1]
        second line
    suite.go:270: backendtest: node state, nft list ruleset:
--- FAIL: TestIPVSConformance (3.00s)
    --- FAIL: TestIPVSConformance/NodePort (2.00s)
=== RUN   TestIPVSHairpin
    kernel_linux_test.go:10: fine
--- PASS: TestIPVSHairpin (1.00s)
FAIL
LBKIT-VM-RESULT: FAIL rc=1`
	result, failures := guestResult(strings.Split(console, "\n"))
	if result != "FAIL rc=1" {
		t.Errorf("result %q, want %q", result, "FAIL rc=1")
	}
	for _, want := range []string{"--- FAIL: TestIPVSConformance/NodePort", "answers map[b0:60]", "second line"} {
		if !strings.Contains(failures, want) {
			t.Errorf("failures lack %q:\n%s", want, failures)
		}
	}
	if strings.Contains(failures, "fine") {
		t.Errorf("failures include a passing test's log:\n%s", failures)
	}
	if r, _ := guestResult([]string{"LBKIT-VM-RESULT: PASS"}); r != "PASS" {
		t.Errorf("result %q, want PASS", r)
	}
	passed := strings.Split(`--- PASS: TestIPVSConformance (9.00s)
    --- PASS: TestIPVSConformance/IPv4 (4.00s)
    --- SKIP: TestIPVSConformance/IPv6 (0.00s)`, "\n")
	if got := missingPasses(passed, []string{"TestIPVSConformance", "TestIPVSConformance/IPv4", "TestIPVSConformance/IPv6"}); !slices.Equal(got, []string{"TestIPVSConformance/IPv6"}) {
		t.Errorf("missingPasses = %v, want the skipped IPv6 family", got)
	}
}
