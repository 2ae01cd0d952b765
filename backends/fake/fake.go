package fake

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
)

// Options configure a Backend. The zero value is usable.
type Options struct {
	// BeforeSync, when set, is called at the start of every Sync that was
	// not failed by FailNext or FailAfter, before anything is applied, and
	// without the Backend's lock held. A non-nil error fails the Sync: the
	// state is left unchanged and Sync returns the error wrapped in
	// backends.ErrApply. It may block to make a Sync slow; it should return
	// when ctx is done.
	BeforeSync func(ctx context.Context, prev, next *servicemap.Snapshot) error
	// BeforeDriftCheck, when set, is called at the start of every
	// Drifted, without the Backend's lock held; a non-nil error is what
	// Drifted returns. It may block or panic, as a broken kernel check
	// would.
	BeforeDriftCheck func(ctx context.Context) error
}

// SyncRecord describes one call of Sync, successful or not.
type SyncRecord struct {
	// Full is true when Sync was called with prev nil.
	Full bool
	// From is prev's version (0 for a full sync), To is next's.
	From, To uint64
	// Start is when Sync was called.
	Start time.Time
	// Ops is the number of service ports the Sync added, replaced or
	// removed in the data plane; 0 when it failed.
	Ops int
	// Given is true when the caller passed the Diff (SyncChanges), so the
	// Backend did not compute it.
	Given bool
	// Err is what Sync returned.
	Err error
}

// Backend is the fake data plane. Create it with New.
type Backend struct {
	opts Options

	mu      sync.Mutex
	state   map[servicemap.ServicePortName]entry
	syncs   []SyncRecord
	failIn  int // Syncs to let through before failing with failErr
	failErr error
	// drifted: the state was altered behind the Backend's back (Corrupt)
	// since the last successful full Sync.
	drifted bool
}

// entry is one service port as the data plane holds it.
type entry struct {
	line      string
	frontends []string
	invalid   bool // the port has no valid cluster IP, port or protocol
}

var (
	_ backends.ChangesSyncer = (*Backend)(nil)
	_ backends.DriftChecker  = (*Backend)(nil)
)

// New returns an empty Backend.
func New(opts Options) *Backend {
	return &Backend{opts: opts, state: map[servicemap.ServicePortName]entry{}}
}

// Name returns "fake".
func (b *Backend) Name() string { return "fake" }

// Sync brings the fake data plane to next; see the package documentation
// for what it checks. A context that is done fails the Sync with its error.
func (b *Backend) Sync(ctx context.Context, prev, next *servicemap.Snapshot) error {
	return b.SyncChanges(ctx, prev, next, nil)
}

// SyncChanges is Sync with c = servicemap.Diff(prev, next) given by the
// caller (backends.ChangesSyncer); a nil c is computed. The fake applies c
// as it is, so a c that does not match prev and next fails as a wrong prev
// does.
func (b *Backend) SyncChanges(ctx context.Context, prev, next *servicemap.Snapshot, c *servicemap.Changes) error {
	rec := SyncRecord{Full: prev == nil, From: prev.Version(), To: next.Version(), Start: time.Now(), Given: c != nil && prev != nil}
	rec.Ops, rec.Err = b.sync(ctx, prev, next, c)
	b.mu.Lock()
	b.syncs = append(b.syncs, rec)
	b.mu.Unlock()
	return rec.Err
}

func (b *Backend) sync(ctx context.Context, prev, next *servicemap.Snapshot, c *servicemap.Changes) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := b.injectedFailure(); err != nil {
		return 0, fmt.Errorf("%w: fake: %w", backends.ErrApply, err)
	}
	if hook := b.opts.BeforeSync; hook != nil {
		if err := hook(ctx, prev, next); err != nil {
			return 0, fmt.Errorf("%w: fake: %w", backends.ErrApply, err)
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	state := maps.Clone(b.state)
	var ops int
	var err error
	switch {
	case prev == nil:
		ops = reconcile(state, next)
	case c == nil:
		ops, err = applyChanges(state, servicemap.Diff(prev, next))
	default:
		ops, err = applyChanges(state, *c)
	}
	if err == nil {
		err = validate(state)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: fake: %w", backends.ErrApply, err)
	}
	b.state = state
	if prev == nil {
		b.drifted = false
	}
	return ops, nil
}

// Drifted reports whether the state was altered behind the Backend's back
// (Corrupt) since the last successful full Sync (backends.DriftChecker).
func (b *Backend) Drifted(ctx context.Context) (bool, error) {
	if hook := b.opts.BeforeDriftCheck; hook != nil {
		if err := hook(ctx); err != nil {
			return false, err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.drifted, nil
}

// injectedFailure returns the error FailNext or FailAfter asked for, when
// this Sync is the one to fail.
func (b *Backend) injectedFailure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failErr == nil {
		return nil
	}
	if b.failIn > 0 {
		b.failIn--
		return nil
	}
	err := b.failErr
	b.failErr = nil
	return err
}

// reconcile makes state hold exactly what next renders to, comparing with
// what state holds, and returns the number of entries it changed.
func reconcile(state map[servicemap.ServicePortName]entry, next *servicemap.Snapshot) int {
	ops := 0
	want := make(map[servicemap.ServicePortName]bool, next.Len())
	for p := range next.All() {
		want[p.Name] = true
		e := newEntry(p)
		if old, ok := state[p.Name]; !ok || old.line != e.line {
			state[p.Name] = e
			ops++
		}
	}
	for name := range state {
		if !want[name] {
			delete(state, name)
			ops++
		}
	}
	return ops
}

// applyChanges applies c to state, checking that state holds what c says
// it replaces or removes, and returns the number of entries it changed.
func applyChanges(state map[servicemap.ServicePortName]entry, c servicemap.Changes) (int, error) {
	expect := func(op string, p *servicemap.ServicePort) error {
		got, ok := state[p.Name]
		switch want := renderPort(p); {
		case !ok:
			return fmt.Errorf("%s %s: not in the data plane", op, p.Name)
		case got.line != want:
			return fmt.Errorf("%s %s: data plane holds %q, prev says %q", op, p.Name, got.line, want)
		}
		return nil
	}
	for _, p := range c.Removed {
		if err := expect("remove", p); err != nil {
			return 0, err
		}
		delete(state, p.Name)
	}
	for _, u := range c.Updated {
		if err := expect("replace", u.Old); err != nil {
			return 0, err
		}
		state[u.New.Name] = newEntry(u.New)
	}
	for _, p := range c.Added {
		if got, ok := state[p.Name]; ok {
			return 0, fmt.Errorf("add %s: already in the data plane as %q", p.Name, got.line)
		}
		state[p.Name] = newEntry(p)
	}
	return len(c.Removed) + len(c.Updated) + len(c.Added), nil
}

func newEntry(p *servicemap.ServicePort) entry {
	return entry{
		line:      renderPort(p),
		frontends: frontends(p),
		invalid:   !p.ClusterIP.IsValid() || p.Port == 0 || !validProtocol(p.Protocol),
	}
}

func validProtocol(p v1.Protocol) bool {
	return p == v1.ProtocolTCP || p == v1.ProtocolUDP || p == v1.ProtocolSCTP
}

// validate rejects a state the data plane could not hold. Errors are listed
// in name order, so the message is deterministic.
func validate(state map[servicemap.ServicePortName]entry) error {
	names := slices.SortedFunc(maps.Keys(state), servicemap.ServicePortName.Compare)
	owner := map[string]servicemap.ServicePortName{}
	var errs []error
	for _, name := range names {
		e := state[name]
		if e.invalid {
			errs = append(errs, fmt.Errorf("%s: invalid service port %q", name, e.line))
			continue
		}
		for _, f := range e.frontends {
			if o, ok := owner[f]; ok && o != name {
				errs = append(errs, fmt.Errorf("%s: %s already used by %s", name, f, o))
				continue
			}
			owner[f] = name
		}
	}
	return errors.Join(errs...)
}

// Cleanup removes every entry.
func (b *Backend) Cleanup(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	clear(b.state)
	b.drifted = false
	return nil
}

// Dump returns the state: one line per service port, sorted by name, each
// ending in a newline, in the format of [Render]; "" when empty.
func (b *Backend) Dump() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	for _, name := range slices.SortedFunc(maps.Keys(b.state), servicemap.ServicePortName.Compare) {
		s.WriteString(b.state[name].line)
		s.WriteByte('\n')
	}
	return s.String()
}

// Syncs returns a copy of the record of every Sync call, oldest first.
func (b *Backend) Syncs() []SyncRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.syncs)
}

// FailNext makes the next Sync fail with err (wrapped in backends.ErrApply)
// and leave the state unchanged. It replaces any failure asked for before;
// a nil err cancels it.
func (b *Backend) FailNext(err error) { b.FailAfter(0, err) }

// FailAfter lets the next n Syncs through and makes the one after fail, as
// FailNext does.
func (b *Backend) FailAfter(n int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failIn, b.failErr = max(n, 0), err
}

// Corrupt removes the entry of one service port behind the Backend's back,
// as another program flushing a rule would, and reports whether it was
// there. Drifted reports it; only a full Sync is bound to repair it.
func (b *Backend) Corrupt(name servicemap.ServicePortName) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.state[name]
	delete(b.state, name)
	b.drifted = b.drifted || ok
	return ok
}

// Flush removes every entry behind the Backend's back, as another program
// flushing the whole ruleset would. Drifted reports it when there was
// something to remove; a full Sync repairs it.
func (b *Backend) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drifted = b.drifted || len(b.state) > 0
	clear(b.state)
}

// Programmed returns how many service ports the fake holds
// ("service-ports"), for backends.Counter.
func (b *Backend) Programmed() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return map[string]int{"service-ports": len(b.state)}
}
