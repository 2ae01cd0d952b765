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
	} else if len(args) > 0 && isHelpFlag(args[0]) {
		cmd, args = "help", nil
	}
	var err error
	switch cmd {
	case "resolve":
		err = runResolve(args, stdout, stderr)
	case "render", "apply", "cleanup", "demo":
		err = runBackendCommand(cmd, args, stdout, stderr)
	case "serve":
		err = runServe(args, stdout, stderr)
	case "diff":
		err = runDiff(args, stdout, stderr)
	case "explain":
		err = runExplain(args, stdout, stderr)
	case "completion":
		err = runCompletion(args, stdout)
	case "help":
		if len(args) == 0 {
			fmt.Fprint(stdout, usageText())
			return 0
		}
		if _, known := synopses[args[0]]; !known {
			err = fmt.Errorf("%w: no command %q", errUsage, args[0])
			break
		}
		return run([]string{args[0], "--help"}, stdout, stderr)
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
	var help *helpText
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errDiffers):
		return 1
	case errors.As(err, &help):
		fmt.Fprint(stdout, help.text)
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "lbctl: %v\n\n%s", err, usageText())
		return 2
	default:
		fmt.Fprintf(stderr, "lbctl: %v\n", err)
		return 1
	}
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }
