package nftables

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lbkit/lbkit/servicemap"
)

// Render returns the whole ruleset Sync programs for snap, as text that
// `nft -f` loads into an empty namespace: one table per shard that holds a
// service port, in shard order. It is deterministic (objects in a fixed
// order, service ports sorted by name, stable names), so it can be compared
// with golden files and shown to people (`lbctl render`), and a pure
// function of its arguments.
//
// Shards are independent, so they are built and written on up to
// GOMAXPROCS goroutines; the result does not depend on how many.
func Render(snap *servicemap.Snapshot, spec Spec) string {
	spec = spec.withDefaults()
	byShard := make([][]*servicemap.ServicePort, spec.Shards)
	for _, p := range sortedPorts(snap) {
		i := shardOf(p.Name, spec.Shards)
		byShard[i] = append(byShard[i], p)
	}
	texts := make([]*[]byte, spec.Shards)
	var next atomic.Int32
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), spec.Shards) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < spec.Shards; i = int(next.Add(1) - 1) {
				if len(byShard[i]) > 0 {
					texts[i] = renderShard(snap, spec, tableName(spec, i), byShard[i])
				}
			}
		})
	}
	wg.Wait()
	size := 0
	for _, t := range texts {
		if t != nil {
			size += len(*t)
		}
	}
	var out strings.Builder
	out.Grow(size)
	for _, t := range texts {
		if t != nil {
			out.Write(*t)
			shardBuffers.Put(t)
		}
	}
	return out.String()
}

// renderShard builds and writes one table.
func renderShard(snap *servicemap.Snapshot, spec Spec, table string, ports []*servicemap.ServicePort) *[]byte {
	rs := buildPorts(snap, spec, ports)
	var w textWriter
	if b, ok := shardBuffers.Get().(*[]byte); ok {
		w.buf = (*b)[:0]
	}
	rs.writeTable(&w, table, rs.ports)
	return &w.buf
}

// textWriter writes table objects separated by blank lines, as nft list
// prints them.
type textWriter struct {
	buf     []byte
	objects int
	fam     *family
	scratch rule
}

func (w *textWriter) WriteString(s string) { w.buf = append(w.buf, s...) }
func (w *textWriter) byte(c byte)          { w.buf = append(w.buf, c) }

// shardBuffers keeps the per-shard text buffers between Renders: at 10,000
// services they are 9 MB in all, and writing into fresh memory costs a page
// fault per 4 KB, more than the rest of the copy. The final string is new
// memory on every call; only these intermediates are reused.
var shardBuffers sync.Pool

// writeTable renders one table holding the skeleton and ports.
func (rs *ruleset) writeTable(w *textWriter, table string, ports []*portRules) {
	w.objects = 0
	w.fam = &rs.fam
	var elems [numContainers][]element
	elems[cServiceIPs] = make([]element, 0, len(ports))
	forEachElement(ports, func(e element) {
		elems[e.in] = append(elems[e.in], e)
	})

	w.WriteString("table " + rs.fam.IP + " " + table + " {\n")
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
		w.byte('/')
		w.WriteString(p.name.Name)
		if p.name.Port != "" {
			w.byte(':')
			w.WriteString(p.name.Port)
		}
		w.byte(' ')
		w.WriteString(string(p.name.Protocol))
		w.byte('\n')
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
		w.byte('\n')
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
	w.WriteString(s.name)
	w.WriteString(" {\n\t\ttype ")
	w.buf = append(s.appendType(w.buf), '\n')
	if s.flags != 0 {
		w.WriteString("\t\tflags " + strings.Join(s.flags.names(), ",") + "\n")
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
				w.byte(',')
			}
			w.byte('\n')
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
		w.WriteString("\t\ttype " + h.typ + " hook " + h.hook +
			" priority " + strconv.Itoa(h.priority) + "; policy accept;\n")
	}
	w.scratch = c.eachRule(w.scratch, func(r rule) {
		w.WriteString("\t\t")
		w.buf = r.appendText(w.buf, w.fam)
		w.byte('\n')
	})
	w.WriteString("\t}\n")
}
