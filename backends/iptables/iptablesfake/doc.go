// Package iptablesfake is a fake of the iptables programs for testing code
// built on the iptables backend without root: an iptables.Executor that
// keeps the nat, filter, mangle, raw and security tables of both IP
// families in memory and changes them as the programs would.
//
// Pass a [Fake] as iptables.Options.Exec. It parses the iptables-restore
// input it is given (*table, ":CHAIN POLICY [packets:bytes]", -A, -I, -D,
// -N, -X, -F, -P, COMMIT) with iptables-restore's semantics: without
// --noflush a table is emptied first; with --noflush only the chains
// declared with ":NAME" are emptied, the others keep their rules. It
// answers iptables-save, `iptables -S` and `nft list chains` from the
// tables, in the formats those programs print, so the backend's full syncs
// read back what its restores wrote.
//
// Like the real programs it refuses what they refuse: a rule in a missing
// chain, a jump to a chain that does not exist, deleting a chain that
// still has rules or is jumped to, a malformed declaration or quote, a
// table without COMMIT. The error wraps a *LineError naming the line, and
// nothing of the refused transaction is applied: a table changes at its
// COMMIT with the legacy flavour, and a whole input at its end with the
// nft flavour, as iptables-nft-restore commits one nft transaction.
//
// Every run is logged (TakeCalls), with its restore input, so a test can
// assert what a sync wrote; FailNext makes a chosen run fail. Save prints
// the tables as iptables-save does, sorted, so two fakes can be compared
// whole. What the fake does not model: counters (always zero), match
// semantics (rules are compared as words) and packets. The programs of
// both flavours see the same tables.
//
// A Fake is safe for concurrent use; its zero value is not usable: call
// New.
package iptablesfake
