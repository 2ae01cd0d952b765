package netlab

// TB is the part of testing.TB that NewNetwork, Serve and ServeEcho use: a
// *testing.T or *testing.B satisfies it, and netlab does not import
// package testing, so a program (lbctl's demo) links none of it.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}
