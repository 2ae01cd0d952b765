// Package golden compares test output with files under testdata/: the one
// helper the render tests of every backend and lbctl share. It imports
// testing, so only tests may import it.
package golden
