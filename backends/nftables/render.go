//go:build linux

package nftables

import (
	"strconv"
	"strings"

	"github.com/lbkit/lbkit/servicemap"
)

// Render returns the whole ruleset Sync programs for snap, as text that
// `nft -f` loads into an empty namespace: one table per shard that holds a
// service port, in shard order. It is deterministic (objects in a fixed
// order, service ports sorted by name, stable names), so it can be compared
// with golden files and shown to people (`lbctl render`), and a pure
// function of its arguments; Options.NFT, Transport and Logger are not used.
func Render(snap *servicemap.Snapshot, opts Options) string {
	opts = opts.withDefaults()
	rs := build(snap, opts)
	var w textWriter
	w.Grow(4096*opts.Shards + 1024*len(rs.ports))
	for i, ports := range partition(rs.ports, opts.Shards) {
		if len(ports) > 0 {
			rs.writeTable(&w, tableName(opts, i), ports)
		}
	}
	return w.String()
}

// textWriter writes table objects separated by blank lines, as nft list
// prints them.
type textWriter struct {
	strings.Builder
	objects int
	scratch []byte
}

// writeTable renders one table holding the skeleton and ports.
func (rs *ruleset) writeTable(w *textWriter, table string, ports []*portRules) {
	w.objects = 0
	var elems [numContainers][]element
	elems[cServiceIPs] = make([]element, 0, len(ports))
	forEachElement(ports, func(e element) {
		elems[e.in] = append(elems[e.in], e)
	})

	w.WriteString("table " + rs.fam.ip + " " + table + " {\n")
	for i := range rs.containers {
		w.set(&rs.containers[i], elems[i])
	}
	for i := range rs.static {
		w.set(&rs.static[i], staticElements(rs.static[i].elems))
	}
	for i := range rs.base {
		w.chain(&rs.base[i])
	}
	for i := range rs.fixed {
		w.chain(&rs.fixed[i])
	}
	w.ports(ports)
	w.WriteString("}\n")
}

func (w *textWriter) ports(ports []*portRules) {
	for _, p := range ports {
		// The comment naming a service port sits above its objects.
		w.separate()
		w.WriteString("\t# ")
		w.WriteString(p.name.Namespace)
		w.WriteByte('/')
		w.WriteString(p.name.Name)
		if p.name.Port != "" {
			w.WriteByte(':')
			w.WriteString(p.name.Port)
		}
		w.WriteByte(' ')
		w.WriteString(string(p.name.Protocol))
		w.WriteByte('\n')
		w.objects = 0
		for i := range p.sets {
			w.set(&p.sets[i], staticElements(p.sets[i].elems))
		}
		for i := range p.chains {
			w.chain(&p.chains[i])
		}
	}
}

func (w *textWriter) separate() {
	if w.objects > 0 {
		w.WriteByte('\n')
	}
	w.objects++
}

func staticElements(keys []string) []element {
	out := make([]element, len(keys))
	for i, k := range keys {
		out[i].key = k
	}
	return out
}

func (w *textWriter) set(s *set, elems []element) {
	w.separate()
	if s.isMap {
		w.WriteString("\tmap ")
	} else {
		w.WriteString("\tset ")
	}
	w.WriteString(s.name + " {\n\t\ttype " + s.typ + "\n")
	if len(s.flags) > 0 {
		w.WriteString("\t\tflags ")
		for i, f := range s.flags {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(string(f))
		}
		w.WriteByte('\n')
	}
	if s.timeout > 0 {
		w.WriteString("\t\ttimeout " + strconv.FormatInt(int64(s.timeout.Seconds()), 10) + "s\n")
	}
	if len(elems) > 0 {
		w.WriteString("\t\telements = {\n")
		for i, e := range elems {
			w.WriteString("\t\t\t")
			w.WriteString(e.key)
			if e.value != "" {
				w.WriteString(" : ")
				w.WriteString(e.value)
			}
			if i < len(elems)-1 {
				w.WriteByte(',')
			}
			w.WriteByte('\n')
		}
		w.WriteString("\t\t}\n")
	}
	w.WriteString("\t}\n")
}

func (w *textWriter) chain(c *chain) {
	w.separate()
	w.WriteString("\tchain ")
	w.WriteString(c.name)
	w.WriteString(" {\n")
	if h := c.hook; h != nil {
		w.WriteString("\t\ttype " + string(h.typ) + " hook " + string(h.hook) +
			" priority " + strconv.Itoa(h.priority) + "; policy accept;\n")
	}
	for _, r := range c.rules {
		w.WriteString("\t\t")
		w.WriteString(r)
		w.WriteByte('\n')
	}
	if c.pick != nil {
		w.scratch = c.pick.eachRule(w.scratch, func(r []byte) {
			w.WriteString("\t\t")
			w.Write(r)
			w.WriteByte('\n')
		})
	}
	w.WriteString("\t}\n")
}
