//go:build linux

package nftables

import (
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// kernelError is one error the kernel reported for a message of a batch.
type kernelError struct {
	seq    uint32
	errno  unix.Errno
	msg    string // the kernel's explanation, when it gives one
	offset int    // of the offending attribute in the message, -1 if unknown
}

// exchange sends one batch and returns the errors the kernel reported
// (none: the batch was committed). lost reports that more errors came than
// the socket could queue; the batch failed all the same.
//
// The socket is opened here, in the network namespace of the calling
// thread, and closed before returning: a socket kept from an earlier call
// could belong to another namespace than the caller's thread now has.
//
// Messages ask for no acknowledgement, as nft's do: nfnetlink processes the
// whole batch (and commits or aborts it) inside sendmsg, and queues an error
// for each message that failed. So once sendmsg has returned, reading until
// the socket is empty collects every answer, with no 20,000 acknowledgements
// to read for a batch that succeeded.
func exchange(batch []byte) (errs []kernelError, lost bool, err error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, false, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, false, os.NewSyscallError("bind", err)
	}
	// Errors then carry the failed message's header only (not a copy of a
	// possibly large message) and the offset of the attribute at fault.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	// The batch must fit the send buffer in one piece: the kernel refuses a
	// datagram longer than it (EMSGSIZE), and a batch split over several
	// datagrams would not be one transaction. nft raises it the same way.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, len(batch)+4096); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, len(batch)+4096)
	}

	to := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	for {
		err = unix.Sendto(fd, batch, 0, to)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, false, os.NewSyscallError("sendmsg", err)
	}

	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		switch err {
		case nil:
			errs = appendKernelErrors(errs, buf[:n])
		case unix.EINTR:
		case unix.EAGAIN:
			return errs, lost, nil
		case unix.ENOBUFS:
			lost = true // errors overflowed the receive queue; go on reading
		default:
			return errs, lost, os.NewSyscallError("recvmsg", err)
		}
	}
}

// appendKernelErrors parses the NLMSG_ERROR messages of one datagram.
func appendKernelErrors(errs []kernelError, b []byte) []kernelError {
	for len(b) >= nlmsgHdrLen {
		n := int(binary.NativeEndian.Uint32(b))
		if n < nlmsgHdrLen || n > len(b) {
			break
		}
		msg := b[:n]
		b = b[min(len(b), (n+3)&^3):]
		typ := binary.NativeEndian.Uint16(msg[4:])
		flags := binary.NativeEndian.Uint16(msg[6:])
		// nlmsgerr: errno, then the header (or all) of the failed message.
		if typ != unix.NLMSG_ERROR || len(msg) < nlmsgHdrLen+4+nlmsgHdrLen {
			continue
		}
		errno := -int32(binary.NativeEndian.Uint32(msg[nlmsgHdrLen:]))
		if errno == 0 {
			continue // an acknowledgement
		}
		orig := msg[nlmsgHdrLen+4:]
		ke := kernelError{seq: binary.NativeEndian.Uint32(orig[8:]), errno: unix.Errno(errno), offset: -1}
		if flags&unix.NLM_F_ACK_TLVS != 0 {
			skip := nlmsgHdrLen
			if flags&unix.NLM_F_CAPPED == 0 {
				skip = int(binary.NativeEndian.Uint32(orig))
			}
			if skip <= len(orig) {
				ke.msg, ke.offset = parseExtAck(orig[skip:])
			}
		}
		errs = append(errs, ke)
	}
	return errs
}

// parseExtAck reads the kernel's message and attribute offset.
func parseExtAck(b []byte) (msg string, offset int) {
	offset = -1
	for len(b) >= nlaHdrLen {
		n := int(binary.NativeEndian.Uint16(b))
		if n < nlaHdrLen || n > len(b) {
			break
		}
		typ, data := binary.NativeEndian.Uint16(b[2:])&^unix.NLA_F_NESTED, b[nlaHdrLen:n]
		switch {
		case typ == unix.NLMSGERR_ATTR_MSG:
			for len(data) > 0 && data[len(data)-1] == 0 {
				data = data[:len(data)-1]
			}
			msg = string(data)
		case typ == unix.NLMSGERR_ATTR_OFFS && len(data) == 4:
			offset = int(binary.NativeEndian.Uint32(data))
		}
		b = b[min(len(b), (n+3)&^3):]
	}
	return msg, offset
}
