//go:build linux

package nftables

import (
	"context"
	"fmt"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"
)

// netlinkWriter sends ops to one table of one family as a single netlink
// transaction (batch): all of it commits or none of it does. It writes what
// `nft -f` would write for knftables' text of the same ops, without the
// cost of starting nft and having it parse, check and fetch the table.
//
// Everything is encoded from the model, nothing from text read back: rules
// from their statements (appendExprs), sets from their typed keys and
// flags, elements with the declaration of the set they go in. The
// messages and the batch are written here rather than through
// google/nftables' Conn, which asks the kernel to acknowledge every message
// (and to echo every rule back): 20,000 answers to read for a batch that
// succeeded, and no way to tell which message an error belongs to. See
// exchange and appendExpr.
//
// A writer is used by one goroutine at a time.
type netlinkWriter struct {
	// buf is the last batch's buffer, reused: a full sync sends a dozen
	// batches of several megabytes each.
	buf []byte
	// messages, when set, counts the messages of the batches sent.
	messages *int
}

var _ writer = (*netlinkWriter)(nil)

// maxKeptBuffer bounds the buffer a writer keeps between runs.
const maxKeptBuffer = 32 << 20

func newNetlinkWriter() *netlinkWriter { return &netlinkWriter{} }

// run sends o to table in fam's family, in the network namespace of the
// calling thread. Kernel errors name the operation they belong to, and keep
// their errno: errors.Is(err, fs.ErrNotExist) holds for ENOENT.
func (w *netlinkWriter) run(ctx context.Context, fam family, table string, o ops) error {
	if len(o) == 0 {
		return ctx.Err()
	}
	b, err := w.translate(fam, table, o)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		kerrs, lost, err := exchange(b.b)
		if err != nil {
			return fmt.Errorf("netlink: table %s %s: %w", nftFamily(fam), table, err)
		}
		if len(kerrs) == 0 && !lost {
			break
		}
		// EAGAIN on the batch itself: the kernel has just loaded nf_tables
		// and asks for the batch again.
		if attempt < 3 && len(kerrs) == 1 && kerrs[0].seq == 1 && kerrs[0].errno == unix.EAGAIN {
			continue
		}
		return b.kernelError(o, kerrs, lost)
	}
	if w.messages != nil {
		*w.messages += len(b.infos)
	}
	if cap(b.b) <= maxKeptBuffer {
		w.buf = b.b[:0]
	}
	return nil
}

// nlBatch is one run's batch being built, with what is needed to explain
// the kernel's errors.
type nlBatch struct {
	nlBuf
	fam     family
	nfproto byte
	table   string
	// infos describe the messages, by sequence number - 1.
	infos []msgInfo
	setID uint32
	// empty are the sets this run declared or flushed and has added no
	// interval to since: nft starts the intervals it adds to an empty set
	// with an end element at zero, and only then.
	empty map[string]bool
	// exprs and scratch are where a rule's expressions and an endpoint
	// pick's rules are built.
	exprs   []expr.Any
	scratch rule
}

type msgInfo struct {
	op int // index in ops; -1 for the batch's begin and end
	// rule is the rule's index in its chain, in a rule message.
	rule int
	// elems locate the elements of an element message: their offsets from
	// the message's start, where the kernel counts its error offsets from.
	elems []elemAt
}

type elemAt struct{ off, op int }

func nfproto(fam family) (byte, error) {
	switch nftFamily(fam) {
	case knftables.IPv4Family:
		return unix.NFPROTO_IPV4, nil
	case knftables.IPv6Family:
		return unix.NFPROTO_IPV6, nil
	}
	return 0, fmt.Errorf("netlink: unsupported family %q", nftFamily(fam))
}

func (w *netlinkWriter) translate(fam family, table string, o ops) (*nlBatch, error) {
	proto, err := nfproto(fam)
	if err != nil {
		return nil, err
	}
	b := &nlBatch{fam: fam, nfproto: proto, table: table, empty: map[string]bool{}}
	// A cold sync's batch takes about 320 bytes per message: one per
	// operation, one per rule of a chain's rules.
	msgs := len(o)
	for i := range o {
		if o[i].kind == oRules {
			msgs += o[i].chain.ruleCount() - 1
		}
	}
	if need := 128 + 384*msgs; cap(w.buf) >= need {
		b.b = w.buf[:0]
	} else {
		b.b = make([]byte, 0, need)
	}
	w.buf = nil // the batch owns it until the run ends
	b.infos = make([]msgInfo, 0, msgs+2)
	b.delimiter(unix.NFNL_MSG_BATCH_BEGIN)
	for i := 0; i < len(o); i++ {
		at := i
		switch x := &o[i]; x.kind {
		case oRules:
			err = b.addRules(i, x.chain)
		case oTable:
			err = b.addTable(i, x.verb)
		case oChain:
			b.addChain(i, x.verb, x.chain)
		case oSet:
			b.addSet(i, x.verb, x.set)
		case oElem:
			j := i + 1
			for j < len(o) && sameElementGroup(x, &o[j]) {
				j++
			}
			at, err = b.addElements(o, i, j)
			i = j - 1
		}
		if err != nil {
			rule := 0 // a rule message's index in its chain
			if o[at].kind == oRules {
				rule = b.infos[len(b.infos)-1].rule
			}
			return nil, fmt.Errorf("netlink: table %s %s: %s: %w", nftFamily(fam), table, describeOp(o[at], rule, &fam), err)
		}
	}
	b.delimiter(unix.NFNL_MSG_BATCH_END)
	if b.err != nil {
		return nil, fmt.Errorf("netlink: table %s %s: %w", nftFamily(fam), table, b.err)
	}
	return b, nil
}

// message begins an nf_tables message of type NFT_MSG_* for operation op.
func (b *nlBatch) message(op int, typ, flags uint16) int {
	start := b.begin(nftMsgPrefix|typ, flags, b.nfproto)
	b.infos = append(b.infos, msgInfo{op: op})
	return start
}

// delimiter writes the batch's begin or end message.
func (b *nlBatch) delimiter(typ uint16) {
	b.end(b.begin(typ, 0, unix.AF_UNSPEC))
	b.infos = append(b.infos, msgInfo{op: -1})
}
