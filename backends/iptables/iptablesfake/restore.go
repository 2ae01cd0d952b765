package iptablesfake

import (
	"errors"
	"fmt"
	"strings"
)

// LineError is a restore input refused at one line, as iptables-restore
// reports it ("line 12 failed").
type LineError struct {
	Line   int    // 1-based
	Reason string // what was wrong with the line
}

func (e *LineError) Error() string {
	return fmt.Sprintf("line %d failed: %s", e.Line, e.Reason)
}

// ErrUnsupported is wrapped by the errors of commands and options the fake
// does not implement.
var ErrUnsupported = errors.New("iptablesfake: unsupported")

// restore applies a restore input to the tables of one family. Each table
// is changed on a copy, which replaces it at its COMMIT (legacy) or, when
// whole is set, once the input has been read to the end (iptables-nft
// applies an input as one transaction). On an error nothing uncommitted is
// applied. Without noflush, a table's chains are emptied and its
// user-defined chains deleted first; with it, only the chains declared
// with ":NAME" are emptied.
func restore(tables map[string]*table, input string, noflush, whole bool) error {
	var cur *table
	staged := map[string]*table{}
	n := 0
	for line := range strings.Lines(input) {
		n++
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		fail := func(format string, args ...any) error {
			return &LineError{Line: n, Reason: fmt.Sprintf(format, args...)}
		}
		switch {
		case line[0] == '*':
			if cur != nil {
				return fail("table `%s' not committed before `%s' (COMMIT expected)", cur.name, line)
			}
			name := line[1:]
			base := staged[name]
			if base == nil {
				base = tables[name]
			}
			if base == nil {
				return fail("can't initialize iptables table `%s': Table does not exist (do you need to insmod?)", name)
			}
			cur = base.clone()
			if !noflush {
				cur.flushAll()
			}
		case line == "COMMIT":
			if cur == nil {
				return fail("COMMIT outside a table")
			}
			cur.used = true
			if whole {
				staged[cur.name] = cur
			} else {
				tables[cur.name] = cur
			}
			cur = nil
		case cur == nil:
			return fail("no table specified (a `*table' line must come first)")
		case line[0] == ':':
			if err := cur.declare(line); err != nil {
				return fail("%v", err)
			}
		default:
			if line[0] == '[' { // counters, as restore -c reads them
				counters, rest, _ := strings.Cut(line, " ")
				if !validCounters(counters) {
					return fail("invalid counters `%s'", counters)
				}
				line = rest
			}
			args, err := splitArgs(line)
			if err == nil {
				err = cur.command(args)
			}
			if err != nil {
				if errors.Is(err, ErrUnsupported) {
					return fmt.Errorf("line %d: %w", n, err)
				}
				return fail("%v", err)
			}
		}
	}
	if cur != nil {
		return &LineError{Line: n + 1, Reason: fmt.Sprintf("COMMIT expected for table `%s'", cur.name)}
	}
	for name, t := range staged {
		tables[name] = t
	}
	return nil
}
