//go:build linux

package nftables

import (
	"strconv"

	"sigs.k8s.io/knftables"
)

// Conversions from the model to knftables objects. Objects carry no family
// or table: the knftables.Interface supplies them.

func (c *chain) object() *knftables.Chain {
	kc := &knftables.Chain{Name: c.name}
	if h := c.hook; h != nil {
		kc.Type = knftables.PtrTo(knftables.BaseChainType(h.typ))
		kc.Hook = knftables.PtrTo(knftables.BaseChainHook(h.hook))
		kc.Priority = knftables.PtrTo(knftables.BaseChainPriority(strconv.Itoa(h.priority)))
	}
	return kc
}

func (s *set) object() knftables.Object {
	typ := string(s.appendType(nil))
	if s.isMap {
		return &knftables.Map{Name: s.name, Type: typ, Flags: s.flags.objects()}
	}
	ks := &knftables.Set{Name: s.name, Type: typ, Flags: s.flags.objects()}
	if s.timeout > 0 {
		ks.Timeout = knftables.PtrTo(s.timeout)
	}
	return ks
}

// objects returns the flags as knftables values.
func (f setFlags) objects() []knftables.SetFlag {
	var out []knftables.SetFlag
	for _, name := range f.names() {
		out = append(out, knftables.SetFlag(name))
	}
	return out
}

// ops is a list of transaction operations on the model's objects. They can
// be written more than once (see Backend.run): as a knftables transaction
// (fill) or as a netlink batch (netlinkWriter), which encodes each object
// from its typed declaration, without reading any text back.
type ops []op

type op struct {
	verb verb
	kind opKind
	// chain is the chain of oChain and oRules. The rules of oRules are
	// generated when the ops are written (the endpoint picks' rules are
	// not kept), so the chain must not change until then.
	chain *chain
	// set is the set of oSet, and the set or map an oElem is in.
	set *set
	// key and value are an oElem's key and, in a map, its verdict, as nft
	// text.
	key, value string
}

type opKind uint8

const (
	oTable opKind = iota
	oChain
	oRules // add the chain's rules
	oSet
	oElem
)

type verb uint8

const (
	opAdd verb = iota
	opFlush
	opDelete
)

func (o *ops) table(v verb)                   { *o = append(*o, op{verb: v, kind: oTable}) }
func (o *ops) chainOp(v verb, c *chain)       { *o = append(*o, op{verb: v, kind: oChain, chain: c}) }
func (o *ops) setOp(v verb, s *set)           { *o = append(*o, op{verb: v, kind: oSet, set: s}) }
func (o *ops) rules(c *chain)                 { *o = append(*o, op{kind: oRules, chain: c}) }
func (o *ops) chainNamed(v verb, name string) { o.chainOp(v, &chain{name: name}) }
func (o *ops) elem(v verb, s *set, key, value string) {
	*o = append(*o, op{verb: v, kind: oElem, set: s, key: key, value: value})
}

// fill adds the operations to tx, rules as fam's text.
func (o ops) fill(tx *knftables.Transaction, fam *family) {
	var buf []byte
	for _, x := range o {
		if x.kind == oRules {
			x.chain.eachRule(nil, func(r rule) {
				buf = r.appendText(buf[:0], fam)
				tx.Add(&knftables.Rule{Chain: x.chain.name, Rule: string(buf)})
			})
			continue
		}
		obj := x.object()
		switch x.verb {
		case opAdd:
			tx.Add(obj)
		case opFlush:
			tx.Flush(obj)
		case opDelete:
			tx.Delete(obj)
		}
	}
}

// object is the knftables object of a table, chain, set or element
// operation: the whole declaration to add, the name alone otherwise.
func (x *op) object() knftables.Object {
	add := x.verb == opAdd
	switch x.kind {
	case oChain:
		if add {
			return x.chain.object()
		}
		return &knftables.Chain{Name: x.chain.name}
	case oSet:
		switch {
		case add:
			return x.set.object()
		case x.set.isMap:
			return &knftables.Map{Name: x.set.name}
		}
		return &knftables.Set{Name: x.set.name}
	case oElem:
		e := &knftables.Element{Set: x.set.name, Key: []string{x.key}}
		if x.set.isMap {
			e.Set, e.Map = "", x.set.name
			if add && x.value != "" {
				e.Value = []string{x.value}
			}
		}
		return e
	}
	return &knftables.Table{}
}

// addChain adds an (empty) chain, flushing it in case it holds rules from
// an earlier run.
func (o *ops) addChain(c *chain) {
	o.chainOp(opAdd, c)
	o.chainOp(opFlush, c)
}

// portObjects creates or refills the ports' sets and chains, then adds the
// chains' rules: every chain exists before a rule can jump to it.
func (o *ops) portObjects(ports []*portRules) {
	for _, p := range ports {
		for i := range p.sets {
			o.fillSet(&p.sets[i])
		}
		for i := range p.chains {
			o.addChain(&p.chains[i])
		}
	}
	for _, p := range ports {
		for i := range p.chains {
			o.rules(&p.chains[i])
		}
	}
}

// fillSet adds a set and, when its content is static, replaces its elements.
// Dynamic sets (affinity) keep what the packet path put in them.
func (o *ops) fillSet(s *set) {
	o.setOp(opAdd, s)
	if s.dynamic() {
		return
	}
	o.setOp(opFlush, s)
	for _, e := range s.elems {
		o.elem(opAdd, s, e, "")
	}
}

func (s *set) dynamic() bool { return s.timeout > 0 }
