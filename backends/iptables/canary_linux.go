//go:build linux

package iptables

import (
	"encoding/binary"
	"unsafe"

	gnft "github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// Reading a canary chain with `iptables -S` costs a process and, with the
// legacy flavour, a copy of the whole table out of the kernel, which grows
// with the number of services (see the README). When the backend drives
// the real programs, the kernel is asked directly instead.

// kernelCanary answers the canary check without starting a program: the
// nft flavour counts the canary chains' rules over netlink; the legacy
// flavour compares each table's size and number of rules with what they
// were when the canaries were last seen intact (a table nobody changed
// since still holds them). known is false when only the programs can
// tell: the caller then runs them, and calls canarySeen if intact.
func (b *Backend) kernelCanary(ipv6 bool) (intact, known bool) {
	if b.opts.Exec != nil {
		return false, false // a fake: its tables are not the kernel's
	}
	switch b.flavour {
	case FlavourNFT:
		fam := gnft.TableFamilyIPv4
		if ipv6 {
			fam = gnft.TableFamilyIPv6
		}
		c, err := gnft.New(gnft.AsLasting())
		if err != nil {
			return false, false
		}
		defer c.CloseLasting()
		for _, table := range []tableName{tableNAT, tableFilter} {
			t := &gnft.Table{Name: string(table), Family: fam}
			rules, err := c.GetRules(t, &gnft.Chain{Name: b.spec.Prefix + "-CANARY", Table: t})
			if err != nil {
				return false, false
			}
			if len(rules) != 1 {
				return false, true
			}
		}
		return true, true
	case FlavourLegacy:
		now, ok := legacyInfo(ipv6)
		return ok && b.seen == now, ok && b.seen == now
	}
	return false, false
}

// canarySeen records, for the legacy flavour, the tables as they are now,
// with the canaries intact: after a restore of lbkit's own, or a check.
// (A change another program makes between the restore and this call goes
// unnoticed until the next change or full sync.)
func (b *Backend) canarySeen(ipv6 bool) {
	b.seen = tablesInfo{}
	if b.opts.Exec == nil && b.flavour == FlavourLegacy {
		b.seen, _ = legacyInfo(ipv6)
	}
}

// tablesInfo is the number of rules and size of the legacy nat and filter
// tables of one family; the zero value matches no real tables.
type tablesInfo struct {
	ipv6          bool
	entries, size [2]uint32
}

// legacyInfo asks the kernel for the legacy tables' headers
// (IPT_SO_GET_INFO, IP6T_SO_GET_INFO), which holds their number of rules
// and size without a copy of the rules.
func legacyInfo(ipv6 bool) (tablesInfo, bool) {
	family, level := unix.AF_INET, unix.IPPROTO_IP
	if ipv6 {
		family, level = unix.AF_INET6, unix.IPPROTO_IPV6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return tablesInfo{}, false
	}
	defer unix.Close(fd)
	info := tablesInfo{ipv6: ipv6}
	for i, table := range []tableName{tableNAT, tableFilter} {
		// struct ipt_getinfo: name[32], valid_hooks, hook_entry[5],
		// underflow[5], num_entries, size.
		var buf [84]byte
		copy(buf[:31], table)
		size := uint32(len(buf))
		const soGetInfo = 64 // IPT_SO_GET_INFO and IP6T_SO_GET_INFO
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), soGetInfo,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		if errno != 0 || size != uint32(len(buf)) {
			return tablesInfo{}, false
		}
		info.entries[i] = binary.NativeEndian.Uint32(buf[76:])
		info.size[i] = binary.NativeEndian.Uint32(buf[80:])
	}
	return info, true
}
