// Package fake is an in-memory lbkit backend with real semantics, for tests
// of the code around a data plane (the Runner, a controller, a user's
// program) without a kernel.
//
// Like knftables' Fake, it is a backend that behaves, not a recorder that
// accepts anything:
//
//   - Its "data plane" is one rendered line per service port (see [Render]
//     for the format), and [Backend.Dump] prints it sorted, so tests compare
//     the whole state as text.
//   - A Sync is applied to a copy of the state and committed only when all
//     of it succeeds. A failed Sync leaves the state exactly as it was and
//     returns an error wrapping backends.ErrApply.
//   - A full Sync (prev nil) reconciles against the fake's own state, not
//     against any snapshot, so it converges after the state was altered
//     behind its back ([Backend.Corrupt]). An incremental Sync applies
//     Diff(prev, next) and checks every step against what the state holds:
//     adding a port that is present, or removing or replacing one that is
//     missing or differs from what prev says, is rejected, as a kernel
//     rejects deleting a rule that is not there. [Backend.SyncChanges]
//     (backends.ChangesSyncer) applies the Diff its caller passes instead
//     of computing it.
//   - The resulting state is validated: a service port must have a valid
//     cluster IP, port and protocol, and no two ports may claim the same
//     frontend (protocol, address and port; or protocol and node port).
//
// [Backend.Drifted] (backends.DriftChecker) reports a state altered behind
// the Backend's back ([Backend.Corrupt], [Backend.Flush]) until a full Sync
// repairs it.
//
// Failures can be injected with [Backend.FailNext] and [Backend.FailAfter],
// or with Options.BeforeSync (and BeforeDriftCheck), which may also block
// or panic, as a stuck or broken kernel call would.
//
// A Backend is safe for concurrent use: tests may call Dump, Syncs and the
// failure hooks while another goroutine runs Sync.
package fake
