package iptables

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/lbkit/lbkit/backends"
)

// Executor runs the iptables programs. The default runs them as processes;
// tests substitute a fake.
type Executor interface {
	// Run runs program with args, feeding it stdin (nil: none), and returns
	// its standard output. An error carries the program's standard error.
	// A restore input arrives as it is written, through stdin: Run should
	// read it to the end.
	Run(ctx context.Context, program string, args []string, stdin io.Reader) ([]byte, error)
}

type osExec struct{}

func (osExec) Run(ctx context.Context, program string, args []string, stdin io.Reader) ([]byte, error) {
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", program, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// programs are the executables of one flavour and family.
type programs struct {
	restore, save, iptables string
}

func programsFor(fl Flavour, ipv6 bool) programs {
	base := "iptables"
	if ipv6 {
		base = "ip6tables"
	}
	return programs{
		restore:  base + "-" + string(fl) + "-restore",
		save:     base + "-" + string(fl) + "-save",
		iptables: base + "-" + string(fl),
	}
}

// detectFlavour asks the system's default iptables which flavour it is, as
// `iptables --version` prints "(nf_tables)" or "(legacy)".
func detectFlavour(ctx context.Context, e Executor) (Flavour, error) {
	out, err := e.Run(ctx, "iptables", []string{"--version"}, nil)
	if err != nil {
		return "", err
	}
	if strings.Contains(string(out), "legacy") {
		return FlavourLegacy, nil
	}
	return FlavourNFT, nil
}

// cause wraps err, from running an iptables program, in the sentinel that
// its cause implies. The programs report most causes only in their
// messages (exit status 4 for all of them), so the messages are read:
//
//	"Permission denied (you must be root)"                    ErrPermission
//	"Another app is currently holding the xtables lock. ..."  ErrTimeout
//	"Table does not exist (do you need to insmod?)"           ErrNotSupported
//
// besides what backends.WithCause finds (a program not found, EPERM, a
// context deadline).
func cause(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var sentinel error
	switch {
	case strings.Contains(msg, "you must be root") || strings.Contains(msg, "Permission denied") ||
		strings.Contains(msg, "Operation not permitted"):
		sentinel = backends.ErrPermission
	case strings.Contains(msg, "xtables lock"):
		sentinel = backends.ErrTimeout
	case strings.Contains(msg, "do you need to insmod") || strings.Contains(msg, "Table does not exist") ||
		strings.Contains(msg, "Protocol not supported") || strings.Contains(msg, "Address family not supported"):
		sentinel = backends.ErrNotSupported
	default:
		return backends.WithCause(err)
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}
