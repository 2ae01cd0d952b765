//go:build linux

package nftables

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/lbkit/lbkit/servicemap"
)

// fullSync reconciles every table with next, whatever the kernel holds
// now: each shard that holds service ports is synced in full (see
// fullSyncShard), then the tables no shard wants are deleted (shards left
// empty, or tables of another shard count). A shard's rules are built just
// before its turn, so the first table's services answer without waiting
// for the rules of all the others.
func (b *Backend) fullSync(ctx context.Context, next *servicemap.Snapshot) (int, error) {
	parts := partitionPorts(sortedPorts(next), len(b.shards))
	total := 0
	wanted := map[string]bool{}
	var chains map[string][]string
	for i, sh := range b.shards {
		sh.deferred = nil
		if len(parts[i]) == 0 {
			sh.rec = newApplied(0)
			continue
		}
		wanted[sh.table] = true
		var kernel *kernelState
		var err error
		switch {
		case b.opts.NFT != nil:
			kernel, err = listKernel(ctx, b.opts.NFT, &b.io.dumps)
		case chains == nil:
			chains, err = listChainsByTable(b.fam)
			b.io.dumps++
			if err != nil {
				return total, err
			}
			fallthrough
		default:
			kernel, err = listTableNetlink(b.fam, sh.table, chains[sh.table], &b.io.dumps)
		}
		if err != nil {
			return total, fmt.Errorf("table %s: %w", sh.table, err)
		}
		rs := buildPorts(next, b.spec, parts[i])
		parts[i] = nil // what the builder made from it is all that is needed now
		n, err := b.fullSyncShard(ctx, sh, kernel, &rs.skeleton, rs.ports, len(wanted) == 1)
		total += n
		if err != nil {
			return total, fmt.Errorf("table %s: %w", sh.table, err)
		}
	}
	tables, err := b.ourTables(b.fam)
	if err != nil {
		return total, err
	}
	for _, t := range tables {
		if wanted[t] {
			continue
		}
		if err := b.deleteTable(ctx, b.fam, t); err != nil {
			return total, err
		}
		total++
	}
	return total, nil
}

// fullSyncShard reconciles one table with its share of the ports, given
// what the kernel holds (chain, set and map names, and the elements of the
// shared maps and sets):
//
//  1. One transaction per batch of service ports creates or flushes and
//     refills their chains and sets, then adds or replaces their elements;
//     the first one also creates the table, (re)creates the base chains,
//     fills the fixed chains and static sets, and declares the shared
//     containers (one commit fewer before the first services answer).
//     In the first table of a sync (first), batches start at firstBatchSize
//     ports and double up to BatchSize, so that the first services answer
//     after a small commit.
//  2. A last transaction deletes elements nobody wants any more, then the
//     chains and sets no port uses (flushed first, so references go first).
//
// Every transaction leaves a consistent table: an element is added only
// after its chain, and a chain is deleted only after what pointed at it.
func (b *Backend) fullSyncShard(ctx context.Context, sh *shard, kernel *kernelState, skel *skeleton, ports []*portRules, first bool) (int, error) {
	total := 0
	run := func(o ops, deletes []deferredDelete) error {
		n, err := b.run(ctx, sh, o, deletes)
		total += n
		return err
	}

	// Ownership of shared elements first: a batch adds an element only
	// when one of its ports is the element's effective owner.
	rec := newApplied(len(ports))
	for _, p := range ports {
		rec.add(p)
	}

	done := make(map[elemID]struct{}, len(rec.elems))
	size := b.opts.BatchSize
	if first {
		size = min(firstBatchSize, size)
	}
	for start := 0; start < len(ports); start, size = start+size, min(2*size, b.opts.BatchSize) {
		batch := ports[start:min(start+size, len(ports))]
		var o ops
		if start == 0 {
			o = setupOps(skel)
		}
		o.portObjects(batch)
		for _, p := range batch {
			for _, e := range p.elems {
				id := e.id()
				own := rec.elems[id]
				if _, dup := done[id]; dup || own[0].port != p.name {
					continue // another port's value wins, or a repeat
				}
				done[id] = struct{}{}
				want := own[0].value
				have, present := kernel.elems[id]
				delete(kernel.elems, id)
				switch {
				case present && have == want:
				case present:
					o.elem(opDelete, &skel.containers[e.in], e.key, "")
					o.elem(opAdd, &skel.containers[e.in], e.key, want)
				default:
					o.elem(opAdd, &skel.containers[e.in], e.key, want)
				}
			}
		}
		if err := run(o, nil); err != nil {
			return total, fmt.Errorf("service ports %s to %s: %w", batch[0].name, batch[len(batch)-1].name, err)
		}
	}

	var o ops
	stale := slices.SortedFunc(maps.Keys(kernel.elems), func(a, b elemID) int {
		return cmp.Or(cmp.Compare(a.in, b.in), strings.Compare(a.key, b.key))
	})
	for _, id := range stale {
		o.elem(opDelete, &skel.containers[id.in], id.key, "")
	}
	wanted := wantedNames(skel, ports)
	var deletes []deferredDelete
	slices.Sort(kernel.chains)
	for _, name := range kernel.chains {
		if !wanted[objectKey{"chain", name}] {
			o.chainNamed(opFlush, name)
			deletes = append(deletes, deferredDelete{"chain", name})
		}
	}
	for _, kind := range []string{"set", "map"} {
		slices.Sort(kernel.sets[kind])
		for _, name := range kernel.sets[kind] {
			if !wanted[objectKey{kind, name}] {
				deletes = append(deletes, deferredDelete{kind, name})
			}
		}
	}
	if err := run(o, deletes); err != nil {
		return total, fmt.Errorf("remove stale objects: %w", err)
	}
	sh.rec = rec
	return total, nil
}

// firstBatchSize is the size of a full sync's first batch. A commit's
// cost grows with the rules it adds, so a small first batch is what lets a
// restarting proxy serve its first services soon; every commit also
// re-validates the table it changes, so later batches are large.
const firstBatchSize = 32

// setupOps creates the table and everything that does not depend on the
// service ports.
func setupOps(s *skeleton) ops {
	var o ops
	o.table(opAdd)
	for i := range s.containers {
		o.setOp(opAdd, &s.containers[i])
	}
	for i := range s.static {
		o.fillSet(&s.static[i])
	}
	for i := range s.base {
		// Delete and re-create, so that a base chain left with other
		// properties (an older priority) does not fail the add.
		c := &s.base[i]
		o.chainNamed(opAdd, c.name)
		o.chainNamed(opDelete, c.name)
		o.chainOp(opAdd, c)
	}
	for i := range s.fixed {
		o.addChain(&s.fixed[i])
	}
	for i := range s.base {
		o.rules(&s.base[i])
	}
	for i := range s.fixed {
		o.rules(&s.fixed[i])
	}
	return o
}

type objectKey struct{ kind, name string }

func wantedNames(s *skeleton, ports []*portRules) map[objectKey]bool {
	w := map[objectKey]bool{}
	for i := range s.containers {
		c := &s.containers[i]
		w[objectKey{kindOf(c), c.name}] = true
	}
	for i := range s.static {
		w[objectKey{"set", s.static[i].name}] = true
	}
	for _, c := range s.base {
		w[objectKey{"chain", c.name}] = true
	}
	for _, c := range s.fixed {
		w[objectKey{"chain", c.name}] = true
	}
	for _, p := range ports {
		for _, c := range p.chains {
			w[objectKey{"chain", c.name}] = true
		}
		for i := range p.sets {
			w[objectKey{kindOf(&p.sets[i]), p.sets[i].name}] = true
		}
	}
	return w
}

func kindOf(s *set) string {
	if s.isMap {
		return "map"
	}
	return "set"
}

// kernelState is what listKernel found.
type kernelState struct {
	chains []string
	sets   map[string][]string // "set" and "map" names
	elems  map[elemID]string   // elements of the shared containers
}

// listKernel lists the table's objects and the elements of the shared
// containers through knftables (used with Options.NFT). A missing table
// (or container) is empty, not an error.
func listKernel(ctx context.Context, nft knftables.Interface, dumps *int) (*kernelState, error) {
	k := &kernelState{sets: map[string][]string{}, elems: map[elemID]string{}}
	var err error
	*dumps++
	if k.chains, err = listNames(ctx, nft, "chain"); err != nil {
		return nil, err
	}
	for _, kind := range []string{"set", "map"} {
		*dumps++
		if k.sets[kind], err = listNames(ctx, nft, kind); err != nil {
			return nil, err
		}
	}
	for c := range numContainers {
		kind := "set"
		if c.isMap() {
			kind = "map"
		}
		if !slices.Contains(k.sets[kind], c.name()) {
			continue
		}
		*dumps++
		elems, err := nft.ListElements(ctx, kind, c.name())
		if notFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list %s %s: %w", kind, c.name(), err)
		}
		for _, e := range elems {
			k.elems[elemID{c, strings.Join(e.Key, " . ")}] = strings.Join(e.Value, " . ")
		}
	}
	return k, nil
}

func listNames(ctx context.Context, nft knftables.Interface, kind string) ([]string, error) {
	names, err := nft.List(ctx, kind)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %ss: %w", kind, err)
	}
	return names, nil
}

// notFound reports a missing table or object, as the nft tool (knftables'
// IsNotFound) or netlink (ENOENT) says it. knftables' netlink listing
// formats the errno into its message (google/nftables uses %v), so the
// text is the only thing left to recognise.
func notFound(err error) bool {
	return err != nil && (knftables.IsNotFound(err) || errors.Is(err, fs.ErrNotExist) ||
		strings.Contains(err.Error(), "no such file or directory"))
}
