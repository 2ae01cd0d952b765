//go:build linux

package netlab

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// inNamespace runs f with the calling goroutine locked to its OS thread and
// that thread moved into the named network namespace. A socket keeps the
// namespace it was created in, so f only has to create sockets; they can be
// used from any goroutine afterwards. Children started by os/exec inside f
// inherit the namespace, since the fork happens on the locked thread.
//
// If f fails to enter the namespace, it never runs: it must not create a
// socket in the wrong (possibly the host's) namespace.
func inNamespace(name string, f func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open netns %q: %w", name, err)
	}
	defer target.Close()

	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %q: %w", name, err)
	}
	defer func() {
		// A thread that cannot go back stays locked: the runtime then
		// discards it when the goroutine exits instead of reusing it.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return f()
}

// InNode runs f with the calling goroutine's OS thread inside the node
// namespace and returns f's error. Sockets created and commands started by f
// belong to the node; goroutines started by f do not, they run on other
// threads.
func (n *Network) InNode(f func() error) error {
	return inNamespace(n.nodeNS, f)
}

// NodeExec runs a command inside the node namespace and returns its combined
// output. A failing command's error includes that output.
func (n *Network) NodeExec(name string, args ...string) (string, error) {
	var out []byte
	err := n.InNode(func() error {
		var err error
		out, err = exec.Command(name, args...).CombinedOutput()
		return err
	})
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s",
			name, strings.Join(args, " "), n.nodeNS, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Conntrack runs the conntrack tool inside the node namespace. The
// connection tracking table is per namespace, and the node's is the one
// that load-balancing rules fill.
func (n *Network) Conntrack(args ...string) (string, error) {
	return n.NodeExec("conntrack", args...)
}
