//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// errDiffers makes lbctl exit 1 after diff printed the differences.
var errDiffers = errors.New("the kernel differs from the files")

// runDiff compares what the current network namespace's kernel holds for
// lbkit with what the files resolve to, changing nothing. The expected
// state is programmed by the same backend into a scratch network
// namespace of lbctl's own and listed with the same tool, so the two
// listings compare line for line; each line is attributed to the service
// port it belongs to.
func runDiff(args []string, stdout, stderr io.Writer) error {
	var f backendFlags
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	f.register(fs, true)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.backend != "nftables" && f.backend != "iptables" {
		return fmt.Errorf("%w: diff supports --backend nftables and iptables, not %q", errUsage, f.backend)
	}
	res, err := f.resolve()
	if err != nil {
		return err
	}
	for _, w := range res.warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	family, _ := f.family_()
	list := func() (string, error) { return kernelListing(f.backend, string(family) == "IPv6") }
	have, err := list()
	if err != nil {
		return err
	}
	var want string
	err = inScratchNetns(func() error {
		_, b, err := f.open(false)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := b.Sync(ctx, nil, res.snap); err != nil {
			return fmt.Errorf("programming the expected state in a scratch namespace: %w", err)
		}
		want, err = list()
		return err
	})
	if err != nil {
		return err
	}
	parse := parseNFT
	if f.backend == "iptables" {
		parse = parseIPTables
	}
	report := compareListings(parse(want), parse(have))
	if len(report) == 0 {
		fmt.Fprintf(stdout, "%s: the kernel matches the files (%d service ports)\n", f.backend, res.snap.Len())
		return nil
	}
	for _, l := range report {
		fmt.Fprintln(stdout, l)
	}
	return errDiffers
}

// kernelListing lists lbkit's part of the current namespace's kernel
// state, as the backend's own tool prints it.
func kernelListing(backend string, ipv6 bool) (string, error) {
	if backend == "nftables" {
		return runTool("nft", "list", "ruleset")
	}
	tool := "iptables-save"
	if ipv6 {
		tool = "ip6tables-save"
	}
	return runTool(tool)
}

// inScratchNetns runs f on a thread of its own in a new, empty network
// namespace, which goes away with the thread's last reference to it.
func inScratchNetns(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("new network namespace: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// listing is a kernel listing split by owner: the lines of each service
// port (key "namespace/name:port" or "namespace/name/port/proto"), and
// the rest.
type listing struct {
	ports  map[string][]string
	shared []string
}

func (l *listing) add(owner, line string) {
	if owner == "" {
		l.shared = append(l.shared, line)
		return
	}
	if l.ports == nil {
		l.ports = map[string][]string{}
	}
	l.ports[owner] = append(l.ports[owner], line)
}

// compareListings reports, per service port, what the kernel (have) lacks
// and what it has extra compared with the expected listing (want).
func compareListings(want, have listing) []string {
	var out []string
	keys := map[string]bool{}
	for k := range want.ports {
		keys[k] = true
	}
	for k := range have.ports {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	for _, k := range sorted {
		w, h := want.ports[k], have.ports[k]
		switch {
		case len(h) == 0:
			out = append(out, fmt.Sprintf("service %s: missing from the kernel (%d lines expected)", k, len(w)))
		case len(w) == 0:
			out = append(out, fmt.Sprintf("service %s: in the kernel, not in the files (%d lines)", k, len(h)))
		default:
			if d := lineDiff(w, h); len(d) > 0 {
				out = append(out, fmt.Sprintf("service %s: differs", k))
				out = append(out, d...)
			}
		}
	}
	if d := lineDiff(want.shared, have.shared); len(d) > 0 {
		out = append(out, "shared chains, sets and base rules: differ")
		out = append(out, d...)
	}
	return out
}

// lineDiff lists the lines only want has ("- ") and only have has ("+ "),
// as multisets: the kernel lists set elements in an order of its own.
func lineDiff(want, have []string) []string {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range have {
		count[l]--
	}
	var out []string
	for _, l := range slices.Sorted(func(yield func(string) bool) {
		for l := range count {
			if !yield(l) {
				return
			}
		}
	}) {
		for n := count[l]; n > 0; n-- {
			out = append(out, "  - "+l+"   (expected, missing from the kernel)")
		}
		for n := count[l]; n < 0; n++ {
			out = append(out, "  + "+l+"   (in the kernel, not expected)")
		}
	}
	return out
}

// parseNFT splits `nft list ruleset` output: the tables whose names start
// with "lbkit", each rule line owned by the service port its chain is
// named after, each map element by the port its verdict jumps to.
func parseNFT(text string) listing {
	var l listing
	table, chain := "", ""
	inElements := false
	for raw := range strings.SplitSeq(text, "\n") {
		t := strings.TrimSpace(raw)
		switch {
		case t == "" || strings.HasPrefix(t, "#"):
			continue
		case strings.HasPrefix(t, "table "):
			table, chain = strings.TrimSuffix(t, " {"), ""
			continue
		}
		if !strings.Contains(table, " lbkit") {
			continue
		}
		switch {
		case strings.HasPrefix(t, "chain "):
			chain = strings.TrimSuffix(strings.TrimPrefix(t, "chain "), " {")
			continue
		case strings.HasPrefix(t, "map ") || strings.HasPrefix(t, "set "):
			chain = table + " " + strings.TrimSuffix(t, " {")
			continue
		case strings.HasPrefix(t, "elements = {"):
			inElements = true
			t = strings.TrimPrefix(t, "elements = {")
		}
		if inElements {
			if strings.HasSuffix(t, "}") {
				inElements = false
				t = strings.TrimSuffix(t, "}")
			}
			for e := range strings.SplitSeq(t, ",") {
				if e = strings.TrimSpace(e); e != "" {
					l.add(nftOwner(e), table+" "+chain+": "+e)
				}
			}
			continue
		}
		if t == "}" {
			continue
		}
		l.add(nftOwner("chain "+chain), table+" "+chain+": "+t)
	}
	return l
}

// nftOwner finds the service port an nftables line belongs to from the
// per-port chain it names ("svc-ns/name/port/proto-hash", and local-,
// ext-, fw- likewise).
func nftOwner(s string) string {
	for _, prefix := range []string{"svc-", "local-", "ext-", "fw-"} {
		i := strings.Index(s, prefix)
		for i >= 0 {
			rest := s[i+len(prefix):]
			end := strings.IndexAny(rest, " ,;{}")
			if end < 0 {
				end = len(rest)
			}
			name := rest[:end]
			if strings.Count(name, "/") >= 2 {
				if h := strings.LastIndexByte(name, '-'); h > 0 {
					return name[:h]
				}
			}
			next := strings.Index(rest, prefix)
			if next < 0 {
				break
			}
			i += len(prefix) + next
		}
	}
	return ""
}

// parseIPTables splits iptables-save output: lbkit's chains and the rules
// that mention them, each rule owned by the service port its comment
// names, counters left out.
func parseIPTables(text string) listing {
	var l listing
	table := ""
	for t := range strings.SplitSeq(text, "\n") {
		t = strings.TrimSpace(t)
		switch {
		case strings.HasPrefix(t, "*"):
			table = t
			continue
		case t == "" || strings.HasPrefix(t, "#") || t == "COMMIT" || !strings.Contains(t, "LBKIT"):
			continue
		case strings.HasPrefix(t, ":"):
			if i := strings.Index(t, " ["); i > 0 {
				t = t[:i]
			}
		}
		l.add(iptablesOwner(t), table+" "+t)
	}
	return l
}

// iptablesOwner reads the service port from a rule's comment
// ("namespace/name:port ...").
func iptablesOwner(rule string) string {
	_, after, ok := strings.Cut(rule, "--comment ")
	if !ok {
		return ""
	}
	after = strings.TrimPrefix(after, `"`)
	end := strings.IndexAny(after, ` "`)
	if end < 0 {
		end = len(after)
	}
	owner := after[:end]
	if !strings.Contains(owner, "/") || !strings.Contains(owner, ":") {
		return ""
	}
	return owner
}
