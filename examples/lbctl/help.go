package main

import (
	"flag"
	"fmt"
	"strings"
)

// helpText is the help a command was asked for: printed on standard
// output, exit status 0.
type helpText struct{ text string }

func (h *helpText) Error() string { return "help requested" }

// synopses are the commands' usage lines, without "lbctl NAME".
var synopses = map[string]string{
	"resolve":    "[-f FILE]... [--node NAME] [--ip-family IPv4|IPv6] [--proxy-name NAME] [--service-cidr CIDR,...] [-o table|json]",
	"render":     "--backend nftables|iptables|ipvs|userspace [resolve flags] [--nodeport-addresses CIDR,...] [--cluster-cidr CIDR,...] [--masquerade-all] [--node-ips IP,...] [--shards N] [--scheduler S]",
	"apply":      "--backend nftables|iptables|ipvs [same flags as render]",
	"cleanup":    "--backend nftables|iptables|ipvs|userspace",
	"serve":      "--backend nftables|iptables|ipvs|userspace [same flags as render] [--healthz ADDR] [--cleanup-on-exit] [--min-sync-interval D]",
	"diff":       "--backend nftables|iptables [same flags as render]",
	"explain":    "NAMESPACE/NAME[:PORT] [resolve flags] [--from IP [--to IP:PORT]] [--cluster-cidr CIDR,...] [--masquerade-all] [--node-ips IP,...] [--backend B] [-o table|json]",
	"demo":       "[--backend nftables|iptables]",
	"completion": "bash|zsh",
}

// blurbs say in a line what each command does.
var blurbs = map[string]string{
	"resolve":    "resolve manifests (or the embedded sample) into the service ports a node programs",
	"render":     "print what a backend would program, without touching anything",
	"apply":      "program the current network namespace once (a full sync)",
	"cleanup":    "remove everything a backend programmed, and nothing else",
	"serve":      "program a backend and keep it current; SIGHUP reloads the files",
	"diff":       "compare the kernel with what the files resolve to; exit 1 naming each service that differs",
	"explain":    "explain one service: every endpoint's verdict and why, and the path of a connection",
	"demo":       "show a kernel load balancer at work in a throwaway namespace network (root)",
	"completion": "print a shell completion script",
}

var commandOrder = []string{"resolve", "render", "apply", "cleanup", "serve", "diff", "explain", "demo", "completion"}

// commandHelp is the help of the command fs belongs to: its synopsis and
// every flag.
func commandHelp(fs *flag.FlagSet) *helpText {
	var b strings.Builder
	name := fs.Name()
	fmt.Fprintf(&b, "lbctl %s: %s\n\nusage:\n  lbctl %s %s\n\nflags:\n", name, blurbs[name], name, synopses[name])
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(nil)
	return &helpText{b.String()}
}

// usageText is lbctl's own help.
func usageText() string {
	var b strings.Builder
	b.WriteString("lbctl resolves Kubernetes Services to the backends a node uses, shows and explains\nthe decisions, and programs them into the kernel.\n\nusage:\n")
	for _, c := range commandOrder {
		fmt.Fprintf(&b, "  lbctl %s %s\n", c, synopses[c])
	}
	b.WriteString("\ncommands:\n")
	for _, c := range commandOrder {
		fmt.Fprintf(&b, "  %-11s %s\n", c, blurbs[c])
	}
	b.WriteString(`
Without -f, lbctl reads its embedded sample cluster; -f - reads standard input.
"lbctl help COMMAND" or "lbctl COMMAND --help" lists a command's flags.
Exit status: 0 on success, 1 on an error, 2 on a usage mistake.
`)
	return b.String()
}
