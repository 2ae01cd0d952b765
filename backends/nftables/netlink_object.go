//go:build linux

package nftables

import (
	"errors"

	"golang.org/x/sys/unix"
)

// The messages for tables, chains, rules and set declarations, as nft
// writes them (flags included: NLM_F_CREATE without NLM_F_EXCL, so that
// adding what exists is not an error).

func (b *nlBatch) addTable(op int, v verb) error {
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
		clear(b.empty)
	default:
		return errors.New("a table cannot be flushed")
	}
	return nil
}

// hookNumbers are the netfilter hooks a base chain can attach to.
var hookNumbers = map[string]uint32{
	"prerouting": unix.NF_INET_PRE_ROUTING, "input": unix.NF_INET_LOCAL_IN, "forward": unix.NF_INET_FORWARD,
	"output": unix.NF_INET_LOCAL_OUT, "postrouting": unix.NF_INET_POST_ROUTING,
}

func (b *nlBatch) addChain(op int, v verb, c *chain) {
	switch v {
	case opAdd:
		m := b.message(op, unix.NFT_MSG_NEWCHAIN, unix.NLM_F_CREATE)
		b.attrString(unix.NFTA_CHAIN_TABLE, b.table)
		b.attrString(unix.NFTA_CHAIN_NAME, c.name)
		if h := c.hook; h != nil {
			const nfAccept = 1 // the policy, as a netfilter verdict
			b.attrString(unix.NFTA_CHAIN_TYPE, h.typ)
			b.attrU32(unix.NFTA_CHAIN_POLICY, nfAccept)
			n := b.nest(unix.NFTA_CHAIN_HOOK)
			b.attrU32(unix.NFTA_HOOK_HOOKNUM, hookNumbers[h.hook])
			b.attrU32(unix.NFTA_HOOK_PRIORITY, uint32(int32(h.priority)))
			b.unnest(n)
		}
		b.end(m)
	case opFlush:
		m := b.message(op, unix.NFT_MSG_DELRULE, 0)
		b.attrString(unix.NFTA_RULE_TABLE, b.table)
		b.attrString(unix.NFTA_RULE_CHAIN, c.name)
		b.end(m)
	case opDelete:
		m := b.message(op, unix.NFT_MSG_DELCHAIN, 0)
		b.attrString(unix.NFTA_CHAIN_TABLE, b.table)
		b.attrString(unix.NFTA_CHAIN_NAME, c.name)
		b.end(m)
	}
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

func (b *nlBatch) addSet(op int, v verb, s *set) {
	name := s.name
	switch v {
	case opAdd:
		magic, keyLen := s.nlKeyType()
		b.setID++
		m := b.message(op, unix.NFT_MSG_NEWSET, unix.NLM_F_CREATE)
		b.attrString(unix.NFTA_SET_TABLE, b.table)
		b.attrString(unix.NFTA_SET_NAME, name)
		b.attrU32(unix.NFTA_SET_FLAGS, s.nlFlags())
		b.attrU32(unix.NFTA_SET_KEY_TYPE, magic)
		b.attrU32(unix.NFTA_SET_KEY_LEN, keyLen)
		if s.isMap {
			b.attrU32(unix.NFTA_SET_DATA_TYPE, unix.NFT_DATA_VERDICT)
			b.attrU32(unix.NFTA_SET_DATA_LEN, 0)
		}
		if s.timeout > 0 {
			b.attrU64(unix.NFTA_SET_TIMEOUT, uint64(s.timeout.Milliseconds()))
		}
		// A set created in this batch is found by name too; the ID is
		// unique so that a lookup of a missing set cannot match it by ID.
		b.attrU32(unix.NFTA_SET_ID, b.setID)
		b.attr(unix.NFTA_SET_USERDATA, s.userData())
		b.end(m)
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
		delete(b.empty, name)
	}
}
