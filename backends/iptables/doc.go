// Package iptables is an lbkit backend that programs kube-proxy-style
// iptables rules through iptables-restore and reads them back with
// iptables-save, with either the nft or the legacy flavour of iptables.
//
// The rules read like kube-proxy's, with lbkit's own prefix (LBKIT- by
// default), so `iptables-save | grep my-service` shows what a person
// expects: every rule carries a comment naming namespace/name:port. Per
// service port there is a chain LBKIT-SVC-<hash> (cluster-policy endpoints),
// LBKIT-SVL-<hash> (local-policy endpoints), LBKIT-EXT-<hash> (external
// traffic), LBKIT-FW-<hash> (loadBalancerSourceRanges) and one LBKIT-SEP-<hash>
// per endpoint; hashes are stable, so names do not change between syncs.
//
// The traffic decision for each service port comes from
// [backends.PortPlan]: which chain cluster-IP and external traffic go to,
// or whether they are rejected or dropped; the short-circuit of pod and
// node traffic for externalTrafficPolicy Local; which traffic is
// masqueraded; the firewall chain; the affinity timeout. This package only
// writes that decision as rules.
//
// What is programmed and how are kept apart: a [Spec] (chain prefix, pod
// and node-port CIDRs, MasqueradeAll, masquerade mark) is the description, pure data that
// [Render] and [New] both take; [Options] (flavour, batching, lock wait,
// the Executor seam, logger) only say how New's Backend programs it. New
// refuses an invalid Spec or Options with backends.ErrInvalidConfig
// (see [Spec.Validate]).
//
// [Render] is a pure function from a snapshot to iptables-restore input;
// [RenderTo] writes the same to an io.Writer as it is produced, on up to
// GOMAXPROCS goroutines (the output does not depend on how many). A
// backend streams its restore inputs to iptables-restore the same way, and
// keeps each service port's decided rules (chain names, comments, dispatch
// lines) with the port between syncs.
// [Backend.Sync] applies it: a full restore at start, after any failure and
// when the caller passes no previous snapshot; otherwise a partial restore
// that rewrites only the chains of the service ports that changed plus the
// dispatch chains. Chains no longer wanted are deleted. A canary chain in
// each table reveals an outside flush, which turns the next sync into a full
// one; [Backend.Drifted] checks it for a Runner between syncs, asking the
// kernel directly rather than starting a program. Cleanup removes every
// LBKIT- chain and every jump to one, and nothing else.
//
// Every program that takes the xtables lock is run with -w and a number of
// seconds (Options.LockWait), never without a bound. Errors wrap
// backends.ErrApply and, read from the programs' messages, ErrPermission
// (not root), ErrTimeout (the lock stayed taken) or ErrNotSupported (a
// program or table missing).
package iptables
