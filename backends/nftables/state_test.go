//go:build linux

package nftables_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/knftables"
)

// state is a table in a normal form that both the fake and Render's text
// can be brought to: "chain X", "set X" and "map X" to their lines (a
// chain's hook and rules in order; a set's properties, then its elements
// sorted).
type state map[string][]string

func fakeState(t testing.TB, f *knftables.Fake) state {
	t.Helper()
	f.RLock()
	defer f.RUnlock()
	s := state{}
	if f.Table == nil {
		return s
	}
	tbl := "lbkit " // the fake's table (its Name is not filled in)
	for name, c := range f.Table.Chains {
		var lines []string
		if c.Hook != nil {
			lines = append(lines, fmt.Sprintf("type %s hook %s priority %s", *c.Type, *c.Hook, *c.Priority))
		}
		for _, r := range c.Rules {
			lines = append(lines, r.Rule)
		}
		s[tbl+"chain "+name] = lines
	}
	for name, set := range f.Table.Sets {
		lines := setProps(set.Type, set.Flags, set.Timeout != nil && *set.Timeout > 0, func() string { return fmt.Sprintf("timeout %ds", int(set.Timeout.Seconds())) })
		s[tbl+"set "+name] = append(lines, elementLines(set.Elements)...)
	}
	for name, m := range f.Table.Maps {
		lines := setProps(m.Type, m.Flags, false, nil)
		s[tbl+"map "+name] = append(lines, elementLines(m.Elements)...)
	}
	return s
}

func setProps(typ string, flags []knftables.SetFlag, hasTimeout bool, timeout func() string) []string {
	lines := []string{"type " + typ}
	if len(flags) > 0 {
		fs := make([]string, len(flags))
		for i, f := range flags {
			fs[i] = string(f)
		}
		lines = append(lines, "flags "+strings.Join(fs, ","))
	}
	if hasTimeout {
		lines = append(lines, timeout())
	}
	return lines
}

func elementLines(elems []*knftables.Element) []string {
	var out []string
	for _, e := range elems {
		l := "element " + strings.Join(e.Key, " . ")
		if len(e.Value) > 0 {
			l += " : " + strings.Join(e.Value, " . ")
		}
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// renderState parses Render's text (its own layout, not nft's grammar).
// Keys start with the table's name.
func renderState(t testing.TB, text string) state {
	t.Helper()
	s := state{}
	var key, table string
	var lines, elems []string
	inElements := false
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case strings.HasPrefix(line, "table "):
			f := strings.Fields(line)
			table = f[len(f)-2]
		case line == "" || strings.HasPrefix(line, "#"):
		case key == "" && strings.HasSuffix(line, " {"):
			key = table + " " + strings.TrimSuffix(line, " {")
			lines, elems = nil, nil
		case line == "elements = {":
			inElements = true
		case inElements && line == "}":
			inElements = false
		case inElements:
			elems = append(elems, "element "+strings.TrimSuffix(line, ","))
		case key != "" && line == "}":
			slices.Sort(elems)
			s[key] = append(lines, elems...)
			key = ""
		case key == "" && line == "}":
		case strings.HasPrefix(strings.TrimPrefix(key, table+" "), "chain ") && strings.HasPrefix(line, "type "):
			lines = append(lines, strings.TrimSuffix(line, "; policy accept;"))
		case key != "":
			lines = append(lines, line)
		default:
			t.Fatalf("renderState: unexpected line %q", raw)
		}
	}
	return s
}

func checkMatchesRender(t testing.TB, f *knftables.Fake, want string) {
	t.Helper()
	if diff := cmp.Diff(renderState(t, want), fakeState(t, f)); diff != "" {
		t.Fatalf("table differs from Render (-render +fake):\n%s", diff)
	}
}
