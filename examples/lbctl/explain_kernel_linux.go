//go:build linux

package main

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"

	"github.com/lbkit/lbkit/servicemap"
)

// kernelRules reads back, from the current network namespace, what the
// backend holds for service port p: its chains and map elements
// (nftables), its rules (iptables), its virtual servers (ipvs), or its
// addresses and table (userspace).
func kernelRules(backend string, p *servicemap.ServicePort) ([]string, error) {
	switch backend {
	case "nftables":
		return nftRules(p)
	case "iptables":
		out, err := runTool("iptables-save")
		if err != nil {
			return nil, err
		}
		return matching(out, func(l string) bool { return strings.Contains(l, p.Name.String()) }), nil
	case "ipvs":
		var lines []string
		for _, fe := range frontendAddrs(p) {
			flag := "-t"
			if p.Protocol == "UDP" {
				flag = "-u"
			}
			out, err := runTool("ipvsadm", "-Ln", flag, fe.String())
			if err != nil {
				continue // not a virtual server
			}
			lines = append(lines, strings.Split(strings.TrimSpace(out), "\n")...)
		}
		return lines, nil
	case "userspace":
		var lines []string
		if out, err := runTool("ip", "-o", "addr", "show", "dev", "lbkit-us0"); err == nil {
			for _, fe := range frontendAddrs(p) {
				lines = append(lines, matching(out, func(l string) bool { return strings.Contains(l, " "+fe.Addr().String()+"/") })...)
			}
		}
		return lines, nil
	}
	return nil, fmt.Errorf("unknown backend %q", backend)
}

// nftRules lists the port's own chains and the elements that lead to them.
func nftRules(p *servicemap.ServicePort) ([]string, error) {
	out, err := runTool("nft", "list", "ruleset")
	if err != nil {
		return nil, err
	}
	base := p.Name.Namespace + "/" + p.Name.Name + "/"
	if p.Name.Port != "" {
		base += p.Name.Port + "/"
	}
	base += strings.ToLower(string(p.Protocol))
	var lines []string
	inChain := false
	keys := make([]string, 0, 4)
	for _, fe := range frontendAddrs(p) {
		keys = append(keys, fe.Addr().String()+" . "+strings.ToLower(string(p.Protocol))+" . "+strconv.Itoa(int(fe.Port())))
	}
	table := ""
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "table "):
			table = strings.TrimSuffix(t, " {")
			continue
		case strings.HasPrefix(t, "chain ") && strings.Contains(t, base):
			inChain = true
			lines = append(lines, table+": "+strings.TrimSuffix(t, " {"))
			continue
		case inChain && t == "}":
			inChain = false
			continue
		}
		if inChain {
			lines = append(lines, "    "+t)
			continue
		}
		for _, k := range keys {
			if strings.Contains(t, k+" :") {
				lines = append(lines, table+": element "+strings.TrimSuffix(strings.TrimSpace(t), ","))
			}
		}
	}
	return lines, nil
}

// frontendAddrs are the addresses and ports p is reached at (node ports
// left out: they have no address).
func frontendAddrs(p *servicemap.ServicePort) []netip.AddrPort {
	out := []netip.AddrPort{netip.AddrPortFrom(p.ClusterIP, p.Port)}
	for _, a := range p.ExternalIPs {
		out = append(out, netip.AddrPortFrom(a, p.Port))
	}
	for _, a := range p.LoadBalancerIPs {
		out = append(out, netip.AddrPortFrom(a, p.Port))
	}
	return out
}

func matching(text string, keep func(string) bool) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if keep(l) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

func runTool(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
