//go:build race

package picker_test

// raceEnabled: the race detector makes sync.Pool drop a quarter of what is
// put in it, so a per-processor round-robin cursor restarts often.
const raceEnabled = true
