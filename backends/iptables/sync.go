package iptables

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/lbkit/lbkit/backends"
	"github.com/lbkit/lbkit/servicemap"
)

// Backend programs iptables. It is not safe for concurrent use (the Runner
// never calls it concurrently).
type Backend struct {
	spec    Spec
	opts    Options
	exec    Executor
	flavour Flavour

	// What the last successful Sync applied; nil forces a full sync.
	applied *servicemap.Snapshot
	rules   *ruleset // what applied renders to
	// seen is the legacy tables' state when the canaries were last known
	// intact (see kernelCanary).
	seen tablesInfo
}

var (
	_ backends.ChangesSyncer = (*Backend)(nil)
	_ backends.DriftChecker  = (*Backend)(nil)
)

// New returns an iptables backend that programs spec. It fails with
// backends.ErrInvalidConfig when spec or opts are invalid (see
// Spec.Validate), and with backends.ErrNotSupported when the iptables
// programs are missing.
func New(spec Spec, opts Options) (*Backend, error) {
	if err := errors.Join(spec.Validate(), opts.validate()); err != nil {
		return nil, err
	}
	o := opts.withDefaults()
	b := &Backend{spec: spec.withDefaults(), opts: o, exec: o.Exec}
	if b.exec == nil {
		b.exec = osExec{}
		if _, err := exec.LookPath("iptables"); err != nil {
			return nil, fmt.Errorf("%w: iptables: %w", backends.ErrNotSupported, err)
		}
	}
	b.flavour = o.Flavour
	if b.flavour == FlavourAuto {
		fl, err := detectFlavour(context.Background(), b.exec)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", backends.ErrNotSupported, cause(err))
		}
		b.flavour = fl
	}
	if o.Exec == nil {
		if b.flavour == FlavourNFT {
			if _, err := exec.LookPath("nft"); err != nil {
				return nil, fmt.Errorf("%w: the nft flavour lists chains with nft: %w", backends.ErrNotSupported, err)
			}
		}
		for _, ipv6 := range []bool{false, true} {
			progs := programsFor(b.flavour, ipv6)
			if _, err := exec.LookPath(progs.restore); err != nil && !ipv6 {
				return nil, fmt.Errorf("%w: %w", backends.ErrNotSupported, err)
			}
		}
	}
	return b, nil
}

// Name returns "iptables".
func (b *Backend) Name() string { return "iptables" }

// Flavour returns the iptables flavour in use.
func (b *Backend) Flavour() Flavour { return b.flavour }

// Sync programs next. With prev equal to the last snapshot this backend
// applied, and lbkit's chains intact, it sends a partial restore: the chains
// of changed service ports and the dispatch chains. Otherwise it reads the
// tables with iptables-save and sends a full restore that also deletes chains
// no longer wanted and restores missing jumps from built-in chains. Errors
// wrap backends.ErrApply, and ErrPermission (not root), ErrNotSupported (a
// program or table missing) or ErrTimeout (the xtables lock stayed taken
// for Options.LockWait, or ctx ended) when one is the cause.
func (b *Backend) Sync(ctx context.Context, prev, next *servicemap.Snapshot) error {
	return b.SyncChanges(ctx, prev, next, nil)
}

// SyncChanges is Sync with c = servicemap.Diff(prev, next) computed by the
// caller (backends.ChangesSyncer); nil c is computed when needed.
func (b *Backend) SyncChanges(ctx context.Context, prev, next *servicemap.Snapshot, c *servicemap.Changes) error {
	progs := programsFor(b.flavour, next.IPFamily() == v1.IPv6Protocol)
	if prev == nil || b.applied == nil || prev != b.applied || !b.intact(ctx, progs) {
		return b.full(ctx, progs, next)
	}
	return b.partial(ctx, progs, prev, next, c)
}

// Drifted reports whether lbkit's rules were flushed from outside since the
// last successful Sync (backends.DriftChecker): it checks the canary chain
// of each table, which an outside flush of the table (iptables -F,
// iptables-restore without --noflush, a firewall reload) empties and an
// outside delete removes. It asks the kernel directly (see kernelCanary):
// a netlink request per table with the nft flavour; with the legacy
// flavour the tables' headers while nobody changed the nat and filter
// tables, and otherwise two iptables runs, which read the whole table. Changes other programs make
// are never a drift by themselves. Before the first successful Sync, and
// after a failed one, it returns true: the next Sync is a full one anyway.
func (b *Backend) Drifted(ctx context.Context) (bool, error) {
	if b.applied == nil {
		return true, nil
	}
	return !b.intact(ctx, programsFor(b.flavour, b.rules.family.ipv6)), nil
}

// intact checks the canary chains: an outside flush of lbkit's tables
// empties them, and the next sync must then be a full one.
func (b *Backend) intact(ctx context.Context, progs programs) bool {
	ipv6 := strings.HasPrefix(progs.iptables, "ip6")
	if ok, known := b.kernelCanary(ipv6); known {
		if !ok {
			b.opts.Logger.Info("lbkit chains changed from outside; full sync")
		}
		return ok
	}
	for _, table := range []tableName{tableNAT, tableFilter} {
		out, err := b.exec.Run(ctx, progs.iptables, append(b.opts.wait(), "-t", string(table), "-S", b.spec.Prefix+"-CANARY"), nil)
		if err != nil || !strings.Contains(string(out), "-A "+b.spec.Prefix+"-CANARY -j RETURN") {
			b.opts.Logger.Info("lbkit chains changed from outside; full sync", "table", table, "err", err)
			return false
		}
	}
	b.canarySeen(ipv6)
	return true
}

func (b *Backend) full(ctx context.Context, progs programs, next *servicemap.Snapshot) error {
	b.applied = nil
	if b.rules != nil && b.rules.family.ipv6 != (next.IPFamily() == v1.IPv6Protocol) {
		b.rules = nil
	}
	existing := map[tableName]saved{}
	for _, table := range []tableName{tableFilter, tableNAT} {
		s, err := b.inspect(ctx, progs, table, next.IPFamily() == v1.IPv6Protocol)
		if err != nil {
			return fmt.Errorf("%w: %w", backends.ErrApply, cause(err))
		}
		existing[table] = s
	}
	rs := b.spec.build(next, b.rules)
	extra := map[tableName][]string{}
	stale := map[tableName][]string{}
	var want map[tableName]map[string]bool
	for table, s := range existing {
		for name := range s.chains {
			if want == nil {
				want = b.spec.wantedChains(rs)
			}
			if !want[table][name] {
				stale[table] = append(stale[table], name)
			}
		}
		slices.Sort(stale[table])
	}
	jumps := b.spec.jumps()
	for i := len(jumps) - 1; i >= 0; i-- {
		j := jumps[i]
		if !existing[j.table].hasJump(j) {
			extra[j.table] = append(extra[j.table], "-I "+j.chain+" "+j.spec)
		}
	}
	// With the nft flavour, the chains of service ports go in batches
	// first; each batch only adds or refills chains that nothing new
	// references yet, or that it rewrites whole, so every step leaves a
	// working ruleset. The last restore rewrites the dispatch chains, which
	// then point at the new chains, and deletes stale ones.
	if size := b.opts.BatchSize; b.flavour == FlavourNFT && size > 0 && len(rs.rules) > size {
		for start := 0; start < len(rs.rules); start += size {
			// The first batch also creates the fixed chains the others jump to.
			tw := tableWrite{fixed: start == 0, own: rs.rules[start:min(start+size, len(rs.rules))]}
			if err := b.restore(ctx, progs, rs, tw); err != nil {
				return err
			}
		}
		if err := b.restore(ctx, progs, rs, tableWrite{fixed: true, dispatch: true, extra: extra, stale: stale}); err != nil {
			return err
		}
	} else if err := b.restore(ctx, progs, rs, tableWrite{fixed: true, own: rs.rules, dispatch: true, extra: extra, stale: stale}); err != nil {
		return err
	}
	b.commit(next, rs)
	return nil
}

func (b *Backend) partial(ctx context.Context, progs programs, prev, next *servicemap.Snapshot, c *servicemap.Changes) error {
	if c == nil {
		d := servicemap.Diff(prev, next)
		c = &d
	}
	if c.Empty() {
		b.applied = next
		return nil
	}
	// Most changes (an endpoint comes or goes) leave the dispatch chains'
	// lines as they were; then only the changed ports' own chains are
	// written, and iptables-nft-restore does not re-read 10,000 rules.
	// A change of the dispatch chains edits them in place when it is
	// small (see dispatchEdits), and rewrites them whole otherwise.
	rs, changed, stale, dispatchChanged, edits := b.plan(c)
	tw := tableWrite{own: changed, dispatch: dispatchChanged && edits == nil, edits: edits,
		stale: map[tableName][]string{tableNAT: stale}}
	if err := b.restore(ctx, progs, rs, tw); err != nil {
		return err
	}
	b.commit(next, rs)
	return nil
}

// plan turns a diff into the ruleset to write, the rules of the changed
// ports, and the chains to delete. It works in place on the applied
// ruleset: should the restore fail, the backend forgets what it applied and
// the next sync is a full one, which renders afresh.
func (b *Backend) plan(c *servicemap.Changes) (rs *ruleset, changed []*portRules, stale []string, dispatchChanged bool, edits map[tableName][]string) {
	rs = b.rules
	var touched []changedPort
	dispatchChanged = len(c.Removed) > 0 || len(c.Added) > 0
	find := func(name servicemap.ServicePortName) (int, bool) {
		return slices.BinarySearchFunc(rs.ports, name, func(p *servicemap.ServicePort, n servicemap.ServicePortName) int {
			return p.Name.Compare(n)
		})
	}
	oldChains := map[chainKey]bool{}
	drop := func(i int) {
		for _, ch := range rs.rules[i].chains {
			oldChains[ch.key] = true
		}
	}
	var pl planner
	render := func(p *servicemap.ServicePort) *portRules {
		r := new(portRules)
		b.spec.rulesFor(p, &rs.family, &pl, r)
		changed = append(changed, r)
		return r
	}
	for _, p := range c.Removed {
		if i, ok := find(p.Name); ok {
			drop(i)
			touched = append(touched, changedPort{old: (*portText)(&rs.rules[i].text), name: p.Name})
			rs.ports = slices.Delete(rs.ports, i, i+1)
			rs.rules = slices.Delete(rs.rules, i, i+1)
		}
	}
	for _, u := range c.Updated {
		if i, ok := find(u.New.Name); ok {
			drop(i)
			old := rs.rules[i]
			rs.ports[i], rs.rules[i] = u.New, render(u.New)
			if old.text != rs.rules[i].text {
				dispatchChanged = true
				touched = append(touched, changedPort{old: (*portText)(&old.text), name: u.New.Name})
			}
		}
	}
	for _, p := range c.Added {
		i, _ := find(p.Name)
		rs.ports = slices.Insert(rs.ports, i, p)
		rs.rules = slices.Insert(rs.rules, i, render(p))
		touched = append(touched, changedPort{name: p.Name})
	}
	for _, r := range changed {
		for _, ch := range r.chains {
			delete(oldChains, ch.key)
		}
	}
	stale = make([]string, 0, len(oldChains))
	for key := range oldChains {
		stale = append(stale, string(b.spec.appendKeyName(nil, key)))
	}
	slices.Sort(stale)
	if dispatchChanged {
		for k := range touched {
			touched[k].now = -1
			if i, ok := find(touched[k].name); ok {
				touched[k].now = i
			}
		}
		edits = b.spec.dispatchEdits(rs, touched)
	}
	return rs, changed, stale, dispatchChanged, edits
}

func (b *Backend) commit(next *servicemap.Snapshot, rs *ruleset) {
	b.applied, b.rules = next, rs
	b.canarySeen(rs.family.ipv6)
}

// errInputUnread ends the writing of a restore input that the program did
// not read to the end.
var errInputUnread = errors.New("iptables-restore did not read all its input")

// restore runs iptables-restore --noflush on what writeTables writes for
// rs and tw, streamed to its standard input as it is written (legacy: from
// a file, see restoreFromFile).
func (b *Backend) restore(ctx context.Context, progs programs, rs *ruleset, tw tableWrite) error {
	if b.flavour == FlavourLegacy {
		return b.restoreFromFile(ctx, progs, rs, tw)
	}
	pr, pw := io.Pipe()
	written := make(chan error, 1)
	var size int64
	go func() {
		cw := &countingWriter{w: pw}
		err := b.spec.writeTables(cw, rs, tw)
		size = cw.n
		pw.CloseWithError(err)
		written <- err
	}()
	_, err := b.exec.Run(ctx, progs.restore, append(b.opts.wait(), "--noflush"), pr)
	// Unblock the writer should the program have stopped reading.
	pr.CloseWithError(errInputUnread)
	werr := <-written
	b.opts.Logger.Debug("iptables-restore", "bytes", size)
	if err == nil && werr != nil {
		err = fmt.Errorf("%s: %w", progs.restore, werr)
	}
	if err != nil {
		b.applied = nil
		return fmt.Errorf("%w: %w", backends.ErrApply, cause(err))
	}
	return nil
}

// restoreFromFile is restore for the legacy flavour, whose input must not
// come through a pipe. Told to wait for the xtables lock (-w), legacy
// iptables-restore (1.8.9 here) arms an alarm for that many seconds and
// never disarms it: when it goes off during a read from a pipe, the read
// is interrupted, the program takes it for the end of its input, and it
// either fails ("COMMIT expected") or, between two tables, exits 0 having
// applied only the first. A slow writer (a loaded machine, a large input)
// is enough. Reads from a regular file are not interrupted, so the input
// is written to an unlinked temporary file first and the program reads
// that.
func (b *Backend) restoreFromFile(ctx context.Context, progs programs, rs *ruleset, tw tableWrite) error {
	f, err := os.CreateTemp("", "lbkit-iptables-restore-*")
	if err != nil {
		return fmt.Errorf("%w: restore input: %w", backends.ErrApply, err)
	}
	os.Remove(f.Name()) // the open file stays readable
	defer f.Close()
	bw := bufio.NewWriterSize(f, 64<<10)
	err = b.spec.writeTables(bw, rs, tw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err == nil {
		_, err = b.exec.Run(ctx, progs.restore, append(b.opts.wait(), "--noflush"), f)
	}
	if err != nil {
		b.applied = nil
		return fmt.Errorf("%w: %w", backends.ErrApply, cause(err))
	}
	return nil
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// wantedChains lists every lbkit chain the ruleset needs, by table.
func (sp *Spec) wantedChains(rs *ruleset) map[tableName]map[string]bool {
	want := map[tableName]map[string]bool{tableNAT: {}, tableFilter: {}}
	for table, chains := range sp.fixedChains() {
		for _, c := range chains {
			want[table][c.name] = true
		}
	}
	for d := dispatch(0); d < numDispatch; d++ {
		t, name := sp.dispatchChain(d)
		want[t][name] = true
	}
	for _, pr := range rs.rules {
		for _, c := range pr.chains {
			want[tableNAT][string(sp.appendKeyName(nil, c.key))] = true
		}
	}
	return want
}

// Cleanup removes every lbkit chain and every jump to one from built-in
// chains, in both tables and both IP families, and nothing else.
func (b *Backend) Cleanup(ctx context.Context) error {
	b.applied, b.rules, b.seen = nil, nil, tablesInfo{}
	var errs []error
	for _, ipv6 := range []bool{false, true} {
		progs := programsFor(b.flavour, ipv6)
		var sb strings.Builder
		empty := true
		for _, table := range []tableName{tableFilter, tableNAT} {
			s, err := b.inspect(ctx, progs, table, ipv6)
			if err != nil {
				if !ipv6 {
					errs = append(errs, cause(err))
				}
				continue
			}
			if len(s.chains) == 0 && len(s.jumps) == 0 {
				continue
			}
			empty = false
			sb.WriteString("*" + string(table) + "\n")
			names := make([]string, 0, len(s.chains))
			for name := range s.chains {
				names = append(names, name)
			}
			slices.Sort(names)
			for _, name := range names {
				sb.WriteString(":" + name + " - [0:0]\n")
			}
			for _, j := range s.jumps {
				sb.WriteString("-D " + j + "\n")
			}
			for _, name := range names {
				sb.WriteString("-X " + name + "\n")
			}
			sb.WriteString("COMMIT\n")
		}
		if empty {
			continue
		}
		if _, err := b.exec.Run(ctx, progs.restore, append(b.opts.wait(), "--noflush"), strings.NewReader(sb.String())); err != nil {
			errs = append(errs, cause(err))
		}
	}
	return errors.Join(errs...)
}
