package iptables

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/lbkit/lbkit/backends/internal/check"
)

// DefaultLockWait is how long an iptables program waits for the xtables
// lock by default: kube-proxy's 5 seconds.
const DefaultLockWait = 5 * time.Second

// Flavour selects the iptables implementation.
type Flavour string

// Flavours of iptables. FlavourAuto asks `iptables --version` which one
// the system's default iptables is.
const (
	FlavourAuto   Flavour = ""
	FlavourNFT    Flavour = "nft"
	FlavourLegacy Flavour = "legacy"
)

// Options say how the backend programs its Spec: which programs, how,
// and where it logs. The zero value is usable.
type Options struct {
	// Flavour picks iptables-nft or iptables-legacy; auto-detected when empty.
	Flavour Flavour
	// BatchSize is the number of service ports per iptables-restore in a
	// full sync with the nft flavour (100 when zero; negative: one
	// restore). iptables-nft-restore --noflush grows quadratically with its
	// input, so small batches are much faster (figures in the README). The
	// legacy flavour rewrites the whole table on every commit, so it always
	// uses one restore.
	BatchSize int
	// LockWait bounds how long each iptables program waits for the xtables
	// lock another program holds (-w, in whole seconds, rounded up):
	// DefaultLockWait when zero; negative is an error. A sync never waits
	// without a bound; one that gives up fails with backends.ErrTimeout and
	// is retried.
	LockWait time.Duration
	// Exec runs the iptables programs; nil runs them for real. Tests pass a
	// fake.
	Exec Executor
	// Logger receives debug and error messages; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.BatchSize == 0 {
		o.BatchSize = 100
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LockWait == 0 {
		o.LockWait = DefaultLockWait
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.Flavour != FlavourAuto && o.Flavour != FlavourNFT && o.Flavour != FlavourLegacy:
		return check.Invalid("iptables", "unknown Options.Flavour %q", o.Flavour)
	case o.LockWait < 0:
		return check.Invalid("iptables", "negative Options.LockWait %v", o.LockWait)
	}
	return nil
}

// wait returns the -w argument and its value in whole seconds.
func (o *Options) wait() []string {
	secs := max(1, int((o.LockWait+time.Second-1)/time.Second))
	return []string{"-w", strconv.Itoa(secs)}
}
