// Command lbctl resolves Kubernetes Services to the backends a node would
// use, and programs them into the kernel, using only lbkit's public API.
//
//	lbctl                      resolve the embedded sample cluster, as a table
//	lbctl resolve [flags]      resolve manifests (-f FILE, repeatable)
//	lbctl render  [flags]      print the rules a backend would program
//	lbctl apply   [flags]      program them into the current network namespace
//	lbctl cleanup [flags]      remove everything a backend programmed
//	lbctl serve   [flags]      program a backend and keep it current (SIGHUP reloads)
//	lbctl demo                 show the kernel load balancer at work (root)
//
// Exit status: 0 on success, 1 on an error, 2 on a usage mistake.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// errUsage marks mistakes in how lbctl was called (exit status 2).
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one lbctl command line and returns its exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "resolve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "resolve":
		err = runResolve(args, stdout, stderr)
	case "render", "apply", "cleanup", "demo":
		err = runBackendCommand(cmd, args, stdout, stderr)
	case "serve":
		err = runServe(args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usageText)
		return 0
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "lbctl: %v\n\n%s", err, usageText)
		return 2
	default:
		fmt.Fprintf(stderr, "lbctl: %v\n", err)
		return 1
	}
}

const usageText = `usage:
  lbctl [resolve] [-f FILE]... [--node NAME] [--ip-family IPv4|IPv6] [--proxy-name NAME] [-o table|json]
  lbctl render  --backend nftables [resolve flags] [--nodeport-addresses CIDR,...] [--cluster-cidr CIDR,...]
  lbctl apply   --backend nftables [same flags as render]
  lbctl cleanup --backend nftables
  lbctl serve   --backend nftables|iptables|ipvs|userspace [same flags as apply] [--healthz ADDR] [--cleanup-on-exit]
  lbctl demo

Without -f, lbctl reads its embedded sample cluster. -f - reads standard input.
`
