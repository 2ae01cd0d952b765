package backendtest

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// nodeState describes the packet-processing objects of the namespace it
// runs in, as sorted lines, for the default Leftovers check: nft objects
// (the ruleset as JSON, without handles, counter values and set elements),
// user chains and rules of iptables-legacy and ip6tables-legacy, IPVS
// services, and ipset names, each from whichever of these tools is on
// PATH. What is left out is what a backend may change or leave without
// owning it: the built-in chains that iptables-nft and iptables-legacy
// create, empty, as soon as any rule is loaded.
//
// It must run in the node (inside Network.InNode).
func nodeState() ([]string, error) {
	var lines []string
	if hasTool("nft") {
		out, err := run("nft", "-j", "list", "ruleset")
		if err != nil {
			return nil, err
		}
		l, err := nftObjects(out)
		if err != nil {
			return nil, err
		}
		lines = append(lines, l...)
	}
	for _, save := range []string{"iptables-legacy-save", "ip6tables-legacy-save"} {
		if !hasTool(save) {
			continue
		}
		out, err := run(save)
		if err != nil {
			return nil, err
		}
		lines = append(lines, legacyObjects(save, out)...)
	}
	if hasTool("ipvsadm") {
		// Fails on a kernel without IPVS, which then holds no services.
		if out, err := run("ipvsadm", "-S", "-n"); err == nil {
			for _, l := range strings.Split(out, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					lines = append(lines, "ipvsadm "+l)
				}
			}
		}
	}
	if hasTool("ipset") {
		out, err := run("ipset", "list", "-n")
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Fields(out) {
			lines = append(lines, "ipset "+l)
		}
	}
	slices.Sort(lines)
	return lines, nil
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// iptablesTables and builtinChains name what iptables creates by itself.
var (
	iptablesTables = []string{"filter", "nat", "mangle", "raw", "security"}
	builtinChains  = []string{"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}
)

// nftObjects turns `nft -j list ruleset` into one line per object, leaving
// out empty built-in iptables-nft chains, and iptables-nft tables that hold
// nothing else.
func nftObjects(listing string) ([]string, error) {
	var doc struct {
		Nftables []map[string]map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(listing), &doc); err != nil {
		return nil, fmt.Errorf("read nft -j list ruleset: %w", err)
	}
	type ref struct{ family, table, chain string }
	str := func(o map[string]any, k string) string { s, _ := o[k].(string); return s }
	hasRules := map[ref]bool{}
	inTable := map[ref]int{} // objects other than the table itself, by table
	for _, entry := range doc.Nftables {
		for kind, o := range entry {
			switch kind {
			case "metainfo", "table":
			case "rule":
				hasRules[ref{str(o, "family"), str(o, "table"), str(o, "chain")}] = true
				fallthrough
			default:
				inTable[ref{str(o, "family"), str(o, "table"), ""}]++
			}
		}
	}
	builtin := func(o map[string]any) bool {
		_, isBase := o["hook"]
		return isBase && slices.Contains(iptablesTables, str(o, "table")) &&
			slices.Contains(builtinChains, str(o, "name")) &&
			!hasRules[ref{str(o, "family"), str(o, "table"), str(o, "name")}]
	}
	var lines []string
	for _, entry := range doc.Nftables {
		for kind, o := range entry {
			if kind == "metainfo" {
				continue
			}
			if kind == "chain" && builtin(o) {
				inTable[ref{str(o, "family"), str(o, "table"), ""}]--
				continue
			}
			delete(o, "handle")
			delete(o, "elem") // elements are contents, often with timeouts
			zeroCounters(o)
			b, err := json.Marshal(o) // maps marshal with sorted keys
			if err != nil {
				return nil, err
			}
			lines = append(lines, "nft "+kind+" "+string(b))
		}
	}
	// Drop iptables-nft tables that held only built-in chains.
	return slices.DeleteFunc(lines, func(l string) bool {
		if !strings.HasPrefix(l, "nft table ") {
			return false
		}
		var o map[string]any
		json.Unmarshal([]byte(strings.TrimPrefix(l, "nft table ")), &o)
		return slices.Contains(iptablesTables, str(o, "name")) && inTable[ref{str(o, "family"), str(o, "name"), ""}] == 0
	}), nil
}

// zeroCounters blanks the values of counter statements, which change as
// packets flow.
func zeroCounters(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "counter" {
				v[k] = nil
				continue
			}
			zeroCounters(x)
		}
	case []any:
		for _, x := range v {
			zeroCounters(x)
		}
	}
}

// legacyObjects keeps the user chains and the rules of an
// iptables-legacy-save listing, each prefixed with the tool and table.
func legacyObjects(tool, listing string) []string {
	var lines []string
	table := ""
	for _, l := range strings.Split(listing, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":"):
			// ":NAME POLICY [packets:bytes]"; user chains have policy "-".
			if f := strings.Fields(l); len(f) >= 2 && f[1] == "-" {
				lines = append(lines, tool+" "+table+" "+f[0])
			}
		case strings.HasPrefix(l, "-A "):
			lines = append(lines, tool+" "+table+" "+l)
		}
	}
	return lines
}

// stateDiff describes how now differs from before: objects added and
// objects removed.
func stateDiff(before, now []string) string {
	var b strings.Builder
	for _, c := range []struct {
		what     string
		from, in []string
	}{{"added", now, before}, {"removed", before, now}} {
		for _, l := range c.from {
			if _, found := slices.BinarySearch(c.in, l); !found {
				fmt.Fprintf(&b, "%s: %s\n", c.what, l)
			}
		}
	}
	return b.String()
}
