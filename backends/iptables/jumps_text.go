package iptables

// Jumps returns the rules Sync keeps in the built-in chains (nat
// PREROUTING, OUTPUT and POSTROUTING; filter INPUT, FORWARD and OUTPUT),
// the way into lbkit's chains, as iptables arguments ("-t nat -A
// PREROUTING ..."). They are not part of Render's output, which is
// iptables-restore input for lbkit's own chains: Sync inserts them once,
// where missing. A person reading Render's output wants them, to see how
// a packet reaches the service chains. Like Render, it does not check
// spec.
func Jumps(spec Spec) []string {
	sp := spec.withDefaults()
	var out []string
	for _, j := range sp.jumps() {
		out = append(out, "-t "+string(j.table)+" -A "+j.chain+" "+j.spec)
	}
	return out
}
