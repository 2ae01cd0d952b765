//go:build linux

package nftables

import (
	"hash/fnv"
	"slices"

	"github.com/lbkit/lbkit/servicemap"
)

// applied is the Go-side record of what the last successful sync put in one
// table: enough to compute the next incremental transaction without listing
// the kernel's state.
type applied struct {
	ports map[servicemap.ServicePortName]*portRecord
	// elems holds, for every element in a shared container, the ports that
	// want it; the first owner (smallest name) decides its value.
	elems map[elemID]owners
}

// portRecord is what one service port put in the table.
type portRecord struct {
	chains []objectRecord
	sets   []objectRecord
	elems  []element
}

// objectRecord is a chain or set, with a fingerprint of its content so that
// an unchanged one is left alone.
type objectRecord struct {
	name string
	sum  uint64
}

type owner struct {
	port  servicemap.ServicePortName
	value string
}

// owners is sorted by port name; nearly always of length 1 (a hairpin
// address or a health-check port can be shared; two services claiming the
// same external IP and port would be too).
type owners []owner

func (o owners) effective() (value string, ok bool) {
	if len(o) == 0 {
		return "", false
	}
	return o[0].value, true
}

func (o owners) with(port servicemap.ServicePortName, value string) owners {
	i, found := slices.BinarySearchFunc(o, port, func(x owner, p servicemap.ServicePortName) int { return x.port.Compare(p) })
	if found {
		o[i].value = value
		return o
	}
	return slices.Insert(o, i, owner{port, value})
}

func (o owners) without(port servicemap.ServicePortName) owners {
	return slices.DeleteFunc(o, func(x owner) bool { return x.port == port })
}

func newApplied(ports int) *applied {
	return &applied{
		ports: make(map[servicemap.ServicePortName]*portRecord, ports),
		elems: make(map[elemID]owners, ports*2),
	}
}

// recordOf fingerprints a port's objects.
func recordOf(pr *portRules) *portRecord {
	r := &portRecord{
		chains: make([]objectRecord, len(pr.chains)),
		sets:   make([]objectRecord, len(pr.sets)),
		elems:  pr.elems,
	}
	for i := range pr.chains {
		r.chains[i] = objectRecord{pr.chains[i].name, chainSum(&pr.chains[i])}
	}
	for i := range pr.sets {
		r.sets[i] = objectRecord{pr.sets[i].name, setSum(&pr.sets[i])}
	}
	return r
}

// add records a port's objects and element ownership.
func (a *applied) add(pr *portRules) {
	a.ports[pr.name] = recordOf(pr)
	for _, e := range pr.elems {
		id := e.id()
		a.elems[id] = a.elems[id].with(pr.name, e.value)
	}
}

func find(list []objectRecord, name string) (objectRecord, bool) {
	for _, o := range list {
		if o.name == name {
			return o, true
		}
	}
	return objectRecord{}, false
}

// chainSum is a fingerprint of the chain's rules: their text, spelt for
// IPv4 (a table has one family, and a family change is a full sync).
func chainSum(c *chain) uint64 {
	h := fnv.New64a()
	var buf []byte
	c.eachRule(nil, func(r rule) {
		buf = append(r.appendText(buf[:0], &ipv4), '\n')
		h.Write(buf)
	})
	return h.Sum64()
}

func setSum(s *set) uint64 {
	h := fnv.New64a()
	h.Write([]byte{byte(s.key[0]), byte(s.key[1]), byte(s.key[2]), byte(btoi(s.isMap))})
	h.Write([]byte{byte(s.flags)})
	h.Write([]byte(s.timeout.String()))
	for _, e := range s.elems {
		h.Write([]byte{'\n'})
		h.Write([]byte(e))
	}
	return h.Sum64()
}
