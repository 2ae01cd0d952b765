package iptables_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/backends/iptables"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// scripted is an Executor that records every run, answers the canary
// check as an intact table does (unless flushed), and fails restores with
// restoreErr.
type scripted struct {
	mu         sync.Mutex
	runs       [][]string
	inputs     []string
	flushed    bool
	restoreErr error
}

func (s *scripted) Run(_ context.Context, program string, args []string, stdin io.Reader) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs = append(s.runs, append([]string{program}, args...))
	if i := slices.Index(args, "-S"); i >= 0 && i+1 < len(args) && strings.HasSuffix(args[i+1], "-CANARY") {
		if s.flushed {
			return []byte("-N " + args[i+1] + "\n"), nil
		}
		return []byte("-N " + args[i+1] + "\n-A " + args[i+1] + " -j RETURN\n"), nil
	}
	if strings.HasSuffix(program, "-restore") {
		if s.restoreErr != nil {
			return nil, s.restoreErr // without reading its input, as a program that fails early
		}
		in, err := io.ReadAll(stdin)
		if err != nil {
			return nil, err
		}
		s.inputs = append(s.inputs, string(in))
	}
	return nil, nil
}

func oneService(name, ip string) *v1.Service {
	return servicemaptest.Service("default", name, ip, []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)})
}

// Errors of the iptables programs say what went wrong, through errors.Is.
func TestSyncErrorClasses(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	tr.OnServiceAdd(oneService("web", "10.96.0.10"))
	snap := tr.Snapshot()
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"not root", errors.New("iptables-restore: exit status 4: iptables-restore v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)"), backends.ErrPermission},
		{"lock held", errors.New("iptables-legacy-restore -w 5 --noflush: exit status 4: Another app is currently holding the xtables lock. Stopped waiting after 5s."), backends.ErrTimeout},
		{"program missing", fmt.Errorf("iptables-nft-restore: %w", exec.ErrNotFound), backends.ErrNotSupported},
		{"no table", errors.New("iptables-restore: exit status 2: iptables-restore v1.8.9 (legacy): can't initialize iptables table `nat': Table does not exist (do you need to insmod?)"), backends.ErrNotSupported},
		{"rule refused", errors.New("iptables-restore: exit status 1: iptables-restore: line 12 failed"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := &scripted{restoreErr: tc.err}
			b, err := iptables.New(iptables.Spec{}, iptables.Options{Exec: ex, Flavour: iptables.FlavourLegacy})
			if err != nil {
				t.Fatal(err)
			}
			err = b.Sync(context.Background(), nil, snap)
			if !errors.Is(err, backends.ErrApply) || !errors.Is(err, tc.err) {
				t.Errorf("Sync = %v, want ErrApply wrapping the program's error", err)
			}
			for _, s := range []error{backends.ErrPermission, backends.ErrNotSupported, backends.ErrTimeout} {
				if got := errors.Is(err, s); got != (s == tc.want) {
					t.Errorf("errors.Is(%v) = %v", s, got)
				}
			}
		})
	}
}

// Every run of iptables and iptables-restore waits a bounded time for the
// xtables lock: -w with a number of seconds, Options.LockWait rounded up (5 by default).
func TestLockWaitIsBounded(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	tr.OnServiceAdd(oneService("web", "10.96.0.10"))
	s1 := tr.Snapshot()
	tr.OnServiceAdd(oneService("api", "10.96.0.11"))
	s2 := tr.Snapshot()
	for _, tc := range []struct {
		wait time.Duration
		want string
	}{{0, "5"}, {1500 * time.Millisecond, "2"}, {time.Millisecond, "1"}, {30 * time.Second, "30"}} {
		for _, fl := range []iptables.Flavour{iptables.FlavourLegacy, iptables.FlavourNFT} {
			ex := &scripted{}
			b, err := iptables.New(iptables.Spec{}, iptables.Options{Exec: ex, Flavour: fl, LockWait: tc.wait})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := b.Sync(ctx, nil, s1); err != nil {
				t.Fatal(err)
			}
			if err := b.Sync(ctx, s1, s2); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Drifted(ctx); err != nil {
				t.Fatal(err)
			}
			if err := b.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
			waited := 0
			for _, run := range ex.runs {
				if run[0] == "nft" || strings.HasSuffix(run[0], "-save") { // they take no lock
					continue
				}
				i := slices.Index(run, "-w")
				if i < 0 || i+1 == len(run) || run[i+1] != tc.want {
					t.Errorf("LockWait %v, %s: run %q, want -w %s", tc.wait, fl, run, tc.want)
				}
				waited++
			}
			if waited < 5 {
				t.Errorf("%s: only %d iptables runs: %q", fl, waited, ex.runs)
			}
		}
	}
}

// SyncChanges writes what the given Diff says, not a Diff of its own.
func TestSyncChangesUsesTheGivenDiff(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	tr.OnServiceAdd(oneService("web", "10.96.0.10"))
	s1 := tr.Snapshot()
	tr.OnServiceAdd(oneService("api", "10.96.0.11"))
	tr.OnServiceAdd(oneService("db", "10.96.0.12"))
	s2 := tr.Snapshot()
	ex := &scripted{}
	b, err := iptables.New(iptables.Spec{}, iptables.Options{Exec: ex, Flavour: iptables.FlavourLegacy})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Sync(ctx, nil, s1); err != nil {
		t.Fatal(err)
	}
	c := servicemap.Diff(s1, s2)
	if len(c.Added) != 2 {
		t.Fatalf("Diff added %d ports, want 2", len(c.Added))
	}
	c.Added = c.Added[:1] // api only
	if err := b.SyncChanges(ctx, s1, s2, &c); err != nil {
		t.Fatal(err)
	}
	last := ex.inputs[len(ex.inputs)-1]
	if !strings.Contains(last, "default/api:http") || strings.Contains(last, "default/db:http") {
		t.Errorf("partial restore does not follow the given Diff:\n%s", last)
	}
}

// Drifted reads the canary chains: an outside flush is a drift.
func TestDrifted(t *testing.T) {
	tr := servicemap.NewTracker(servicemap.Options{})
	tr.OnServiceAdd(oneService("web", "10.96.0.10"))
	snap := tr.Snapshot()
	ex := &scripted{}
	b, err := iptables.New(iptables.Spec{}, iptables.Options{Exec: ex, Flavour: iptables.FlavourLegacy})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(what string, want bool) {
		t.Helper()
		if got, err := b.Drifted(ctx); err != nil || got != want {
			t.Errorf("%s: Drifted = %v, %v; want %v", what, got, err, want)
		}
	}
	check("before any sync", true)
	if err := b.Sync(ctx, nil, snap); err != nil {
		t.Fatal(err)
	}
	check("after a sync", false)
	ex.flushed = true
	check("after a flush", true)
}
