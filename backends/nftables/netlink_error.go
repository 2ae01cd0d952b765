//go:build linux

package nftables

import (
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/knftables"
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
	verb := "add"
	switch x.verb {
	case opFlush:
		verb = "flush"
	case opDelete:
		verb = "delete"
	}
	switch obj := x.obj.(type) {
	case nil:
		return fmt.Sprintf("add rule to chain %s (%s)", x.rules.name, x.rules.ruleText(rule, fam))
	case *knftables.Table:
		return verb + " table"
	case *knftables.Chain:
		return verb + " chain " + obj.Name
	case *knftables.Rule:
		if x.verb == opAdd {
			return fmt.Sprintf("add rule to chain %s (%s)", obj.Chain, obj.Rule)
		}
		return fmt.Sprintf("%s rule in chain %s (%s)", verb, obj.Chain, obj.Rule)
	case *knftables.Set:
		return verb + " set " + obj.Name
	case *knftables.Map:
		return verb + " map " + obj.Name
	case *knftables.Element:
		kind, name := "set", obj.Set
		if obj.Map != "" {
			kind, name = "map", obj.Map
		}
		prep := " to "
		if x.verb != opAdd {
			prep = " from "
		}
		key := strings.Join(obj.Key, " . ")
		if len(obj.Value) > 0 && x.verb == opAdd {
			key += " : " + strings.Join(obj.Value, " . ")
		}
		return verb + " element " + key + prep + kind + " " + name
	}
	return fmt.Sprintf("%s %T", verb, x.obj)
}
