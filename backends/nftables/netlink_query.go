//go:build linux

package nftables

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// nlQuery is a netfilter netlink socket for the drift check's small
// requests: the ruleset generation, the list of tables, the rules of one
// chain. Answers are counted or read in place, without decoding rules into
// expressions. The socket belongs to the network namespace of the thread
// that opened it.
type nlQuery struct {
	fd   int
	req  nlBuf
	rbuf []byte
	// dumps counts the dump requests sent.
	dumps int
}

func openQuery() (*nlQuery, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	return &nlQuery{fd: fd, rbuf: make([]byte, 64<<10)}, nil
}

func (q *nlQuery) close() { unix.Close(q.fd) }

// do sends one nf_tables request (a dump when dump is set) with the
// attributes attrs writes, and calls f with the attributes of every answer
// message, until the dump ends or the request is acknowledged. A kernel
// error is returned as its errno.
func (q *nlQuery) do(msgType uint16, dump bool, family uint8, attrs func(*nlBuf), f func(attrs []byte)) error {
	q.req.b = q.req.b[:0]
	flags := uint16(unix.NLM_F_ACK)
	if dump {
		flags = unix.NLM_F_DUMP
		q.dumps++
	}
	start := q.req.begin(nftMsgPrefix|msgType, flags, family)
	if attrs != nil {
		attrs(&q.req)
	}
	q.req.end(start)
	seq := q.req.seq
	if err := unix.Sendto(q.fd, q.req.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("sendto", err)
	}
	for {
		n, _, err := unix.Recvfrom(q.fd, q.rbuf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("recvfrom", err)
		}
		for b := q.rbuf[:n]; len(b) >= nlmsgHdrLen; {
			size := int(binary.NativeEndian.Uint32(b))
			if size < nlmsgHdrLen || size > len(b) {
				break
			}
			msg := b[:size]
			b = b[min(len(b), (size+3)&^3):]
			if binary.NativeEndian.Uint32(msg[8:]) != seq {
				continue
			}
			switch typ := binary.NativeEndian.Uint16(msg[4:]); {
			case typ == unix.NLMSG_DONE:
				return nil
			case typ == unix.NLMSG_ERROR:
				if len(msg) < nlmsgHdrLen+4 {
					return unix.EBADMSG
				}
				if errno := -int32(binary.NativeEndian.Uint32(msg[nlmsgHdrLen:])); errno != 0 {
					return unix.Errno(errno)
				}
				return nil // the acknowledgement
			case len(msg) >= nlmsgHdrLen+nfgenHdrLen:
				f(msg[nlmsgHdrLen+nfgenHdrLen:])
			}
		}
	}
}

// eachAttr calls f with the type and data of each attribute of b.
func eachAttr(b []byte, f func(typ uint16, data []byte)) {
	for len(b) >= nlaHdrLen {
		n := int(binary.NativeEndian.Uint16(b))
		if n < nlaHdrLen || n > len(b) {
			return
		}
		f(binary.NativeEndian.Uint16(b[2:])&^unix.NLA_F_NESTED, b[nlaHdrLen:n])
		b = b[min(len(b), (n+3)&^3):]
	}
}

// generation returns the ruleset generation (NFT_MSG_GETGEN): it changes
// with every commit in the namespace, anyone's.
func (q *nlQuery) generation() (uint32, error) {
	var gen uint32
	var found bool
	err := q.do(unix.NFT_MSG_GETGEN, false, unix.AF_UNSPEC, nil, func(attrs []byte) {
		eachAttr(attrs, func(typ uint16, data []byte) {
			if typ == unix.NFTA_GEN_ID && len(data) == 4 {
				gen, found = binary.BigEndian.Uint32(data), true
			}
		})
	})
	if err == nil && !found {
		err = unix.EBADMSG
	}
	return gen, err
}

// tables returns the names of the family's tables.
func (q *nlQuery) tables(fam family) (map[string]bool, error) {
	proto, err := nfproto(fam)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	err = q.do(unix.NFT_MSG_GETTABLE, true, proto, nil, func(attrs []byte) {
		eachAttr(attrs, func(typ uint16, data []byte) {
			if typ == unix.NFTA_TABLE_NAME && len(data) > 0 {
				names[string(data[:len(data)-1])] = true
			}
		})
	})
	return names, err
}

// ruleCount returns the number of rules in one chain; a missing chain has
// none.
func (q *nlQuery) ruleCount(fam family, table, chain string) (int, error) {
	proto, err := nfproto(fam)
	if err != nil {
		return 0, err
	}
	count := 0
	err = q.do(unix.NFT_MSG_GETRULE, true, proto, func(w *nlBuf) {
		w.attrString(unix.NFTA_RULE_TABLE, table)
		w.attrString(unix.NFTA_RULE_CHAIN, chain)
	}, func([]byte) { count++ })
	if err == unix.ENOENT {
		return 0, nil
	}
	return count, err
}
