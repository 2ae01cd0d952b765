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
	if s.isMap {
		return &knftables.Map{Name: s.name, Type: s.typ, Flags: s.flags.objects()}
	}
	ks := &knftables.Set{Name: s.name, Type: s.typ, Flags: s.flags.objects()}
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

// setRef names a set or map for flush and delete.
func setRef(name string, isMap bool) knftables.Object {
	if isMap {
		return &knftables.Map{Name: name}
	}
	return &knftables.Set{Name: name}
}

func setElement(set, key string) *knftables.Element {
	return &knftables.Element{Set: set, Key: []string{key}}
}

func (e element) object() *knftables.Element {
	if !e.in.isMap() {
		return setElement(e.in.name(), e.key)
	}
	ke := &knftables.Element{Map: e.in.name(), Key: []string{e.key}}
	if e.value != "" {
		ke.Value = []string{e.value}
	}
	return ke
}

// ops is a list of transaction operations that can be turned into a
// knftables transaction more than once (see Backend.run).
type ops []op

type op struct {
	verb verb
	obj  knftables.Object
	// rules, when obj is nil, is a chain whose rules to add. They are
	// generated when the ops are written (the endpoint picks' rules are
	// not kept), so the chain must not change until then.
	rules *chain
}

type verb uint8

const (
	opAdd verb = iota
	opFlush
	opDelete
)

func (o *ops) add(obj knftables.Object)    { *o = append(*o, op{verb: opAdd, obj: obj}) }
func (o *ops) flush(obj knftables.Object)  { *o = append(*o, op{verb: opFlush, obj: obj}) }
func (o *ops) delete(obj knftables.Object) { *o = append(*o, op{verb: opDelete, obj: obj}) }

// fill adds the operations to tx, rules as fam's text.
func (o ops) fill(tx *knftables.Transaction, fam *family) {
	var buf []byte
	for _, x := range o {
		if x.obj == nil {
			x.rules.eachRule(nil, func(r rule) {
				buf = r.appendText(buf[:0], fam)
				tx.Add(&knftables.Rule{Chain: x.rules.name, Rule: string(buf)})
			})
			continue
		}
		switch x.verb {
		case opAdd:
			tx.Add(x.obj)
		case opFlush:
			tx.Flush(x.obj)
		case opDelete:
			tx.Delete(x.obj)
		}
	}
}

// addChain adds an (empty) chain, flushing it in case it holds rules from
// an earlier run.
func (o *ops) addChain(c *chain) {
	o.add(c.object())
	o.flush(&knftables.Chain{Name: c.name})
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

// rules adds the chain's rules.
func (o *ops) rules(c *chain) { *o = append(*o, op{verb: opAdd, rules: c}) }

// fillSet adds a set and, when its content is static, replaces its elements.
// Dynamic sets (affinity) keep what the packet path put in them.
func (o *ops) fillSet(s *set) {
	o.add(s.object())
	if s.dynamic() {
		return
	}
	o.flush(setRef(s.name, s.isMap))
	for _, e := range s.elems {
		o.add(setElement(s.name, e))
	}
}

func (s *set) dynamic() bool { return s.timeout > 0 }
