// Package affinity implements ClientIP session affinity: the policy a Service
// asks for, and a bounded client→endpoint table for in-process pickers.
//
// FromService derives a Policy with kube-proxy's semantics. It never fails:
// values an API server would have defaulted or rejected are replaced by the
// nearest valid value and reported as human-readable warnings, so one odd
// Service cannot stop a sync.
//
// Table remembers which endpoint each client was last sent to. Entries expire
// a timeout after their last use, as with iptables' `recent` match, and the
// least recently used entry is evicted when the table is full.
//
// Contracts:
//
//   - Purity: nothing here reads the clock, the environment, global state or
//     the kernel. Callers pass the current time in, which makes expiry exact
//     to test.
//   - Concurrency: Policy is an immutable value. A *Table is safe for use by
//     multiple goroutines; every method holds one sync.Mutex for O(1) work,
//     except Expire and DeleteEndpoint, which are O(entries).
//   - Zero values: the zero Policy means no affinity. The zero Table is an
//     empty table with DefaultMaxEntries capacity, ready to use; a Table must
//     not be copied after first use.
package affinity
