//go:build linux

package nftables

import (
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// appendExpr appends one rule expression as an NFTA_LIST_ELEM. The shapes
// the rule model produces (appendExprs) are encoded here, straight into the
// batch: the same bytes as google/nftables' expr.Marshal
// (TestNetlinkAppendExprMatchesMarshal and FuzzRuleModel compare them),
// without the two dozen small allocations a rule costs there, which were
// half the time of building a cold sync's batch. Any other shape goes
// through expr.Marshal.
func (w *nlBuf) appendExpr(fam byte, e expr.Any) error {
	n := w.nest(unix.NFTA_LIST_ELEM)
	if !w.appendKnownExpr(e) {
		data, err := expr.Marshal(fam, e)
		if err != nil {
			return err
		}
		w.b = append(w.b, data...)
	}
	w.unnest(n)
	return nil
}

// exprData starts an expression: its name, then its data attributes.
func (w *nlBuf) exprData(name string) int {
	w.attrString(unix.NFTA_EXPR_NAME, name)
	return w.nest(unix.NFTA_EXPR_DATA)
}

// appendKnownExpr encodes e if it is of a kind (and shape) known here, and
// reports whether it did; it writes nothing otherwise.
func (w *nlBuf) appendKnownExpr(e expr.Any) bool {
	switch e := e.(type) {
	case *expr.Payload:
		if e.OperationType != expr.PayloadLoad || e.CsumType != 0 {
			return false
		}
		d := w.exprData("payload")
		w.attrU32(unix.NFTA_PAYLOAD_DREG, e.DestRegister)
		w.attrU32(unix.NFTA_PAYLOAD_BASE, uint32(e.Base))
		w.attrU32(unix.NFTA_PAYLOAD_OFFSET, e.Offset)
		w.attrU32(unix.NFTA_PAYLOAD_LEN, e.Len)
		w.unnest(d)
	case *expr.Meta:
		d := w.exprData("meta")
		w.attrU32(unix.NFTA_META_KEY, uint32(e.Key))
		w.attrU32(regAttr(e.SourceRegister, unix.NFTA_META_SREG, unix.NFTA_META_DREG), e.Register)
		w.unnest(d)
	case *expr.Ct:
		if e.Key != expr.CtKeySTATE && e.Key != expr.CtKeySTATUS {
			return false // other keys may carry a direction
		}
		d := w.exprData("ct")
		w.attrU32(unix.NFTA_CT_KEY, uint32(e.Key))
		w.attrU32(regAttr(e.SourceRegister, unix.NFTA_CT_SREG, unix.NFTA_CT_DREG), e.Register)
		w.unnest(d)
	case *expr.Cmp:
		d := w.exprData("cmp")
		w.attrU32(unix.NFTA_CMP_SREG, e.Register)
		w.attrU32(unix.NFTA_CMP_OP, uint32(e.Op))
		w.nestedValue(unix.NFTA_CMP_DATA, e.Data)
		w.unnest(d)
	case *expr.Bitwise:
		d := w.exprData("bitwise")
		w.attrU32(unix.NFTA_BITWISE_SREG, e.SourceRegister)
		w.attrU32(unix.NFTA_BITWISE_DREG, e.DestRegister)
		w.attrU32(unix.NFTA_BITWISE_LEN, e.Len)
		w.nestedValue(unix.NFTA_BITWISE_MASK, e.Mask)
		w.nestedValue(unix.NFTA_BITWISE_XOR, e.Xor)
		w.unnest(d)
	case *expr.Lookup:
		d := w.exprData("lookup")
		if e.SourceRegister != 0 {
			w.attrU32(unix.NFTA_LOOKUP_SREG, e.SourceRegister)
		}
		if e.IsDestRegSet {
			w.attrU32(unix.NFTA_LOOKUP_DREG, e.DestRegister)
		}
		if e.Invert {
			w.attrU32(unix.NFTA_LOOKUP_FLAGS, unix.NFT_LOOKUP_F_INV)
		}
		w.attrString(unix.NFTA_LOOKUP_SET, e.SetName)
		w.attrU32(unix.NFTA_LOOKUP_SET_ID, e.SetID)
		w.unnest(d)
	case *expr.Immediate:
		d := w.exprData("immediate")
		w.attrU32(unix.NFTA_IMMEDIATE_DREG, e.Register)
		w.nestedValue(unix.NFTA_IMMEDIATE_DATA, e.Data)
		w.unnest(d)
	case *expr.Verdict:
		d := w.exprData("immediate")
		w.attrU32(unix.NFTA_IMMEDIATE_DREG, unix.NFT_REG_VERDICT)
		data := w.nest(unix.NFTA_IMMEDIATE_DATA)
		w.appendVerdict(e)
		w.unnest(data)
		w.unnest(d)
	case *expr.NAT:
		// The model's dnat: an address and a port, each in one register.
		if e.RegAddrMin == 0 || e.RegAddrMax != 0 || e.RegProtoMin == 0 || e.RegProtoMax != 0 || !e.Specified ||
			e.Random || e.FullyRandom || e.Persistent || e.Prefix {
			return false
		}
		d := w.exprData("nat")
		w.attrU32(unix.NFTA_NAT_TYPE, uint32(e.Type))
		w.attrU32(unix.NFTA_NAT_FAMILY, e.Family)
		w.attrU32(unix.NFTA_NAT_REG_ADDR_MIN, e.RegAddrMin)
		w.attrU32(unix.NFTA_NAT_REG_PROTO_MIN, e.RegProtoMin)
		w.attrU32(unix.NFTA_NAT_FLAGS, unix.NF_NAT_RANGE_PROTO_SPECIFIED)
		w.unnest(d)
	case *expr.Masq:
		// The model's masquerade is fully random.
		if e.ToPorts || e.Random || e.Persistent || !e.FullyRandom {
			return false
		}
		d := w.exprData("masq")
		w.attrU32(unix.NFTA_MASQ_FLAGS, unix.NF_NAT_RANGE_PROTO_RANDOM_FULLY)
		w.unnest(d)
	case *expr.Numgen:
		if e.Type != unix.NFT_NG_RANDOM && e.Type != unix.NFT_NG_INCREMENTAL {
			return false // expr.Marshal reports the error
		}
		d := w.exprData("numgen")
		w.attrU32(unix.NFTA_NG_DREG, e.Register)
		w.attrU32(unix.NFTA_NG_MODULUS, e.Modulus)
		w.attrU32(unix.NFTA_NG_TYPE, e.Type)
		w.attrU32(unix.NFTA_NG_OFFSET, e.Offset)
		w.unnest(d)
	case *expr.Fib:
		// The model's fib: the address type of the source or the
		// destination address.
		if !e.ResultADDRTYPE || e.ResultOIF || e.ResultOIFNAME || e.FlagSADDR == e.FlagDADDR ||
			e.FlagMARK || e.FlagIIF || e.FlagOIF || e.FlagPRESENT {
			return false
		}
		flags := uint32(unix.NFTA_FIB_F_DADDR)
		if e.FlagSADDR {
			flags = unix.NFTA_FIB_F_SADDR
		}
		d := w.exprData("fib")
		w.attrU32(unix.NFTA_FIB_DREG, e.Register)
		w.attrU32(unix.NFTA_FIB_FLAGS, flags)
		w.attrU32(unix.NFTA_FIB_RESULT, unix.NFT_FIB_RESULT_ADDRTYPE)
		w.unnest(d)
	case *expr.Dynset:
		// The model's set update: a key, no data, timeout or expressions.
		if len(e.Exprs) > 0 || e.SrcRegData != 0 || e.Timeout != 0 || e.Invert {
			return false
		}
		d := w.exprData("dynset")
		w.attrU32(unix.NFTA_DYNSET_SREG_KEY, e.SrcRegKey)
		w.attrU32(unix.NFTA_DYNSET_OP, e.Operation)
		w.attrString(unix.NFTA_DYNSET_SET_NAME, e.SetName)
		w.attrU32(unix.NFTA_DYNSET_SET_ID, e.SetID)
		w.attrU32(unix.NFTA_DYNSET_FLAGS, 0)
		w.unnest(d)
	case *expr.Reject:
		d := w.exprData("reject")
		w.attrU32(unix.NFTA_REJECT_TYPE, e.Type)
		w.attr(unix.NFTA_REJECT_ICMP_CODE, []byte{e.Code})
		w.unnest(d)
	default:
		return false
	}
	return true
}

func regAttr(source bool, sreg, dreg uint16) uint16 {
	if source {
		return sreg
	}
	return dreg
}
