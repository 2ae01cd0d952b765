package backendtest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// Require skips the test unless it can build namespace networks: Linux,
// root, and every named tool (for example "ip", "nft", "conntrack") on PATH.
//
// With LBKIT_E2E=1 in the environment the same message fails the test
// instead, so a kernel conformance run that cannot actually run is a
// failure, never a quiet skip.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	if runtime.GOOS != "linux" {
		missing = append(missing, "Linux (running on "+runtime.GOOS+")")
	} else if euid := os.Geteuid(); euid != 0 {
		missing = append(missing, fmt.Sprintf("root (euid is %d)", euid))
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%q on PATH", tool))
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "backendtest: kernel test needs " + strings.Join(missing, ", ")
	if os.Getenv("LBKIT_E2E") == "1" {
		t.Fatal(msg + " (LBKIT_E2E=1 makes this a failure)")
		return
	}
	t.Skip(msg + " (set LBKIT_E2E=1 to fail instead)")
}
