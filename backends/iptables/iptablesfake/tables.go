package iptablesfake

import (
	"slices"
	"strings"
)

// builtins are the built-in chains of each table, in hook order.
var builtins = map[string][]string{
	"filter":   {"INPUT", "FORWARD", "OUTPUT"},
	"nat":      {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle":   {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":      {"PREROUTING", "OUTPUT"},
	"security": {"INPUT", "FORWARD", "OUTPUT"},
}

// tableOrder is the order in which Save prints tables.
var tableOrder = []string{"filter", "nat", "mangle", "raw", "security"}

// table is one table of one family. A committed table is never changed in
// place: a transaction works on a clone and replaces it at COMMIT.
type table struct {
	name string
	// used is set once a transaction committed to the table; only used
	// tables are listed (iptables-nft creates them on first use).
	used   bool
	chains map[string]*chain
}

type chain struct {
	builtin bool
	policy  string // ACCEPT or DROP; built-in chains only
	rules   []rule
}

// rule is one rule: its text as written after "-A CHAIN ", and its words
// (quotes removed), which is what -D and -C compare.
type rule struct {
	text string
	args []string
}

func newTable(name string) *table {
	t := &table{name: name, chains: map[string]*chain{}}
	for _, c := range builtins[name] {
		t.chains[c] = &chain{builtin: true, policy: "ACCEPT"}
	}
	return t
}

// clone returns a copy that can be changed without touching t. Rules are
// never changed in place, so the copies share them.
func (t *table) clone() *table {
	c := &table{name: t.name, used: t.used, chains: make(map[string]*chain, len(t.chains))}
	for name, ch := range t.chains {
		cp := *ch
		cp.rules = slices.Clip(ch.rules)
		c.chains[name] = &cp
	}
	return c
}

// flushAll is what a restore without --noflush does to a table first:
// every chain emptied, every user-defined chain deleted.
func (t *table) flushAll() {
	for name, ch := range t.chains {
		if !ch.builtin {
			delete(t.chains, name)
			continue
		}
		ch.rules = nil
	}
}

// references counts the rules of t that jump or go to chain name.
func (t *table) references(name string) int {
	n := 0
	for _, ch := range t.chains {
		for _, r := range ch.rules {
			if target, _ := ruleTarget(r.args); target == name {
				n++
			}
		}
	}
	return n
}

// order returns the chain names: built-in ones in hook order, then the
// others sorted.
func (t *table) order() []string {
	names := slices.Clone(builtins[t.name])
	var user []string
	for name, ch := range t.chains {
		if !ch.builtin {
			user = append(user, name)
		}
	}
	slices.Sort(user)
	return append(names, user...)
}

// save writes the table as iptables-save does (counters always zero).
func (t *table) save(w *strings.Builder) {
	w.WriteString("*" + t.name + "\n")
	names := t.order()
	for _, name := range names {
		policy := "-"
		if ch := t.chains[name]; ch.builtin {
			policy = ch.policy
		}
		w.WriteString(":" + name + " " + policy + " [0:0]\n")
	}
	for _, name := range names {
		t.chains[name].writeRules(w, name)
	}
	w.WriteString("COMMIT\n")
}

func (c *chain) writeRules(w *strings.Builder, name string) {
	for _, r := range c.rules {
		w.WriteString("-A " + name)
		if r.text != "" {
			w.WriteString(" " + r.text)
		}
		w.WriteByte('\n')
	}
}

// listRules writes what `iptables -S [chain]` prints.
func (t *table) listRules(w *strings.Builder, only string) {
	names := t.order()
	if only != "" {
		names = []string{only}
	}
	for _, name := range names {
		if ch := t.chains[name]; ch.builtin {
			w.WriteString("-P " + name + " " + ch.policy + "\n")
		} else {
			w.WriteString("-N " + name + "\n")
		}
	}
	for _, name := range names {
		t.chains[name].writeRules(w, name)
	}
}

// hooks are how `nft list chains` shows the base chains iptables-nft
// creates, by table and chain.
var hooks = map[string]string{
	"filter":   "type filter hook %s priority filter",
	"mangle":   "type filter hook %s priority mangle",
	"raw":      "type filter hook %s priority raw",
	"security": "type filter hook %s priority 150",
	"nat":      "type nat hook %s priority %s",
}

var natPriority = map[string]string{"PREROUTING": "dstnat", "INPUT": "100", "OUTPUT": "-100", "POSTROUTING": "srcnat"}
