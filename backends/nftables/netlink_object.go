//go:build linux

package nftables

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"
)

// The messages for tables, chains, rules and set declarations, as nft
// writes them (flags included: NLM_F_CREATE without NLM_F_EXCL, so that
// adding what exists is not an error).

var errUnsupportedVerb = errors.New("operation not supported by the netlink writer")

func (b *nlBatch) addTable(op int, v verb, t *knftables.Table) error {
	if t.Comment != nil || len(t.Flags) > 0 || t.Handle != nil {
		return errors.New("table comments, flags and handles are not supported")
	}
	switch v {
	case opAdd:
		m := b.message(op, unix.NFT_MSG_NEWTABLE, 0)
		b.attrString(unix.NFTA_TABLE_NAME, b.table)
		b.attrU32(unix.NFTA_TABLE_FLAGS, 0)
		b.end(m)
	case opDelete:
		m := b.message(op, unix.NFT_MSG_DELTABLE, 0)
		b.attrString(unix.NFTA_TABLE_NAME, b.table)
		b.end(m)
		b.dropped = true
		clear(b.decls)
		clear(b.empty)
	default:
		return errUnsupportedVerb
	}
	return nil
}

// Netfilter verdicts, as a base chain's policy (linux/netfilter.h).
const (
	nfDrop   = 0
	nfAccept = 1
)

var (
	chainHooks = map[knftables.BaseChainHook]uint32{
		knftables.PreroutingHook: unix.NF_INET_PRE_ROUTING, knftables.InputHook: unix.NF_INET_LOCAL_IN,
		knftables.ForwardHook: unix.NF_INET_FORWARD, knftables.OutputHook: unix.NF_INET_LOCAL_OUT,
		knftables.PostroutingHook: unix.NF_INET_POST_ROUTING,
	}
	chainTypes = map[knftables.BaseChainType]bool{
		knftables.FilterType: true, knftables.NATType: true, knftables.RouteType: true,
	}
	// The priority names of the ip and ip6 families.
	namedPriorities = map[string]int64{
		"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100,
	}
	chainPolicyCodes = map[knftables.BaseChainPolicy]uint32{
		knftables.AcceptPolicy: nfAccept, knftables.DropPolicy: nfDrop,
	}
)

func (b *nlBatch) addChain(op int, v verb, c *knftables.Chain) error {
	if c.Comment != nil || c.Device != nil || c.Handle != nil {
		return errors.New("chain comments, devices and handles are not supported")
	}
	switch v {
	case opAdd:
		base := c.Type != nil || c.Hook != nil || c.Priority != nil
		if base && (c.Type == nil || c.Hook == nil || c.Priority == nil) {
			return errors.New("a base chain needs a type, a hook and a priority")
		}
		if !base && c.Policy != nil {
			return errors.New("only a base chain has a policy")
		}
		m := b.message(op, unix.NFT_MSG_NEWCHAIN, unix.NLM_F_CREATE)
		b.attrString(unix.NFTA_CHAIN_TABLE, b.table)
		b.attrString(unix.NFTA_CHAIN_NAME, c.Name)
		if base {
			hook, ok := chainHooks[*c.Hook]
			if !ok {
				return fmt.Errorf("unsupported hook %q", *c.Hook)
			}
			if !chainTypes[*c.Type] {
				return fmt.Errorf("unsupported chain type %q", *c.Type)
			}
			prio, err := parsePriority(*c.Priority)
			if err != nil {
				return err
			}
			policy := uint32(nfAccept)
			if c.Policy != nil {
				if policy, ok = chainPolicyCodes[*c.Policy]; !ok {
					return fmt.Errorf("unsupported policy %q", *c.Policy)
				}
			}
			b.attrString(unix.NFTA_CHAIN_TYPE, string(*c.Type))
			b.attrU32(unix.NFTA_CHAIN_POLICY, policy)
			h := b.nest(unix.NFTA_CHAIN_HOOK)
			b.attrU32(unix.NFTA_HOOK_HOOKNUM, hook)
			b.attrU32(unix.NFTA_HOOK_PRIORITY, uint32(prio))
			b.unnest(h)
		}
		b.end(m)
	case opFlush:
		m := b.message(op, unix.NFT_MSG_DELRULE, 0)
		b.attrString(unix.NFTA_RULE_TABLE, b.table)
		b.attrString(unix.NFTA_RULE_CHAIN, c.Name)
		b.end(m)
	case opDelete:
		m := b.message(op, unix.NFT_MSG_DELCHAIN, 0)
		b.attrString(unix.NFTA_CHAIN_TABLE, b.table)
		b.attrString(unix.NFTA_CHAIN_NAME, c.Name)
		b.end(m)
	}
	return nil
}

// parsePriority reads a number, or a standard priority name with an
// optional "+ N" or "- N".
func parsePriority(p knftables.BaseChainPriority) (int32, error) {
	s := strings.ReplaceAll(string(p), " ", "")
	n, err := strconv.ParseInt(s, 10, 32)
	if err == nil {
		return int32(n), nil
	}
	name, offset := s, int64(0)
	if i := strings.IndexAny(s, "+-"); i > 0 {
		name = s[:i]
		if offset, err = strconv.ParseInt(s[i:], 10, 32); err != nil {
			return 0, fmt.Errorf("bad priority %q", p)
		}
	}
	base, ok := namedPriorities[name]
	if !ok || base+offset != int64(int32(base+offset)) {
		return 0, fmt.Errorf("bad priority %q", p)
	}
	return int32(base + offset), nil
}

// addRules appends the rules of c, one message each.
func (b *nlBatch) addRules(op int, c *chain) error {
	var err error
	i := 0
	b.scratch = c.eachRule(b.scratch, func(r rule) {
		if err != nil {
			return
		}
		b.exprs = r.appendExprs(b.exprs[:0], b.nfproto)
		m := b.message(op, unix.NFT_MSG_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_APPEND)
		b.infos[len(b.infos)-1].rule = i
		i++
		b.attrString(unix.NFTA_RULE_TABLE, b.table)
		b.attrString(unix.NFTA_RULE_CHAIN, c.name)
		list := b.nest(unix.NFTA_RULE_EXPRESSIONS)
		for _, e := range b.exprs {
			if err = b.appendExpr(b.nfproto, e); err != nil {
				return
			}
		}
		b.unnest(list)
		b.end(m)
	})
	return err
}

// setProps are the declaration fields of a Set or Map.
type setProps struct {
	typ, typeOf string
	flags       []knftables.SetFlag
	timeout     *time.Duration
	unsupported bool // a field the writer does not support is set
}

func setPropsOf(s *knftables.Set) setProps {
	return setProps{typ: s.Type, typeOf: s.TypeOf, flags: s.Flags, timeout: s.Timeout,
		unsupported: s.GCInterval != nil || s.Size != nil || s.Policy != nil || s.AutoMerge != nil ||
			s.Comment != nil || s.Handle != nil}
}

func mapPropsOf(m *knftables.Map) setProps {
	return setProps{typ: m.Type, typeOf: m.TypeOf, flags: m.Flags, timeout: m.Timeout,
		unsupported: m.GCInterval != nil || m.Size != nil || m.Policy != nil || m.Comment != nil || m.Handle != nil}
}

func (b *nlBatch) addSet(op int, v verb, name string, isMap bool, p setProps) error {
	switch v {
	case opAdd:
		if p.unsupported || p.typeOf != "" {
			return errors.New("typeof, gc-interval, size, policy, auto-merge, comments and handles are not supported")
		}
		d, err := parseSetDecl(isMap, p.typ, p.flags, p.timeout)
		if err != nil {
			return err
		}
		magic, keyLen, err := d.keyType()
		if err != nil {
			return err
		}
		b.setID++
		m := b.message(op, unix.NFT_MSG_NEWSET, unix.NLM_F_CREATE)
		b.attrString(unix.NFTA_SET_TABLE, b.table)
		b.attrString(unix.NFTA_SET_NAME, name)
		b.attrU32(unix.NFTA_SET_FLAGS, d.flags)
		b.attrU32(unix.NFTA_SET_KEY_TYPE, magic)
		b.attrU32(unix.NFTA_SET_KEY_LEN, keyLen)
		switch {
		case d.verdict:
			b.attrU32(unix.NFTA_SET_DATA_TYPE, unix.NFT_DATA_VERDICT)
			b.attrU32(unix.NFTA_SET_DATA_LEN, 0)
		case d.data != 0:
			dt := d.data.datatype()
			b.attrU32(unix.NFTA_SET_DATA_TYPE, dt.GetNFTMagic())
			b.attrU32(unix.NFTA_SET_DATA_LEN, uint32(d.data.size()))
		}
		if d.timeout > 0 {
			b.attrU64(unix.NFTA_SET_TIMEOUT, uint64(d.timeout.Milliseconds()))
		}
		// A set created in this batch is found by name too; the ID is
		// unique so that a lookup of a missing set cannot match it by ID.
		b.attrU32(unix.NFTA_SET_ID, b.setID)
		b.attr(unix.NFTA_SET_USERDATA, d.userData())
		b.end(m)
		b.decls[name] = d
		b.empty[name] = true // as far as this run knows
	case opFlush:
		m := b.message(op, unix.NFT_MSG_DELSETELEM, 0)
		b.attrString(unix.NFTA_SET_ELEM_LIST_TABLE, b.table)
		b.attrString(unix.NFTA_SET_ELEM_LIST_SET, name)
		b.end(m)
		b.empty[name] = true
	case opDelete:
		m := b.message(op, unix.NFT_MSG_DELSET, 0)
		b.attrString(unix.NFTA_SET_TABLE, b.table)
		b.attrString(unix.NFTA_SET_NAME, name)
		b.end(m)
		b.decls[name] = nil
		delete(b.empty, name)
	}
	return nil
}
