//go:build linux

package nftables

import (
	"errors"
	"fmt"
)

// kernelError turns the kernel's errors into one error naming the
// operations that failed. The first error is usually the cause; later ones
// often follow from it.
func (b *nlBatch) kernelError(o ops, kerrs []kernelError, lost bool) error {
	const shown = 5
	var errs []error
	for i, ke := range kerrs {
		if i == shown {
			errs = append(errs, fmt.Errorf("and %d more errors", len(kerrs)-shown))
			break
		}
		what := "commit the batch"
		if idx := int(ke.seq) - 1; idx >= 0 && idx < len(b.infos) {
			info := &b.infos[idx]
			op := info.op
			for _, e := range info.elems {
				if ke.offset >= e.off {
					op = e.op // the element at fault, when the kernel says where
				}
			}
			if op >= 0 && op < len(o) {
				what = describeOp(o[op], info.rule, &b.fam)
			}
		}
		if ke.msg != "" {
			errs = append(errs, fmt.Errorf("netlink: table %s %s: %s: %w (%s)", nftFamily(b.fam), b.table, what, ke.errno, ke.msg))
		} else {
			errs = append(errs, fmt.Errorf("netlink: table %s %s: %s: %w", nftFamily(b.fam), b.table, what, ke.errno))
		}
	}
	if lost {
		errs = append(errs, fmt.Errorf("netlink: table %s %s: the batch failed; some of its errors were lost",
			nftFamily(b.fam), b.table))
	}
	return errors.Join(errs...)
}

// describeOp names an operation for an error message.
func describeOp(x op, rule int, fam *family) string {
	verb := [...]string{opAdd: "add", opFlush: "flush", opDelete: "delete"}[x.verb]
	switch x.kind {
	case oRules:
		return fmt.Sprintf("add rule to chain %s (%s)", x.chain.name, x.chain.ruleText(rule, fam))
	case oTable:
		return verb + " table"
	case oChain:
		return verb + " chain " + x.chain.name
	case oSet:
		return verb + " " + kindOf(x.set) + " " + x.set.name
	}
	prep, key := " from ", x.key
	if x.verb == opAdd {
		prep = " to "
		if x.value != "" {
			key += " : " + x.value
		}
	}
	return verb + " element " + key + prep + kindOf(x.set) + " " + x.set.name
}
