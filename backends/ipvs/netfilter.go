//go:build linux

package ipvs

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/knftables"
)

// Base chain priorities. IPVS hooks LOCAL_OUT at -98 (NF_IP_PRI_NAT_DST+2)
// and LOCAL_IN at 98/99: the filter chains run before it (-110) and see the
// virtual address the client used, not the real server IPVS chose.
// The short-circuit's destination NAT runs just before those filter
// chains, so that they and IPVS see the cluster IP it chose.
const (
	prioShortCircuit = prioBeforeIPVS - 1
	prioBeforeIPVS   = -110
	prioSNAT         = 100
)

type baseChain struct {
	name  string
	typ   knftables.BaseChainType
	hook  knftables.BaseChainHook
	prio  int
	rules []string
}

// chains returns the table's base chains and their rules. Cluster-IP
// traffic from outside the pod CIDRs is marked for masquerading, or all of
// it with masqueradeAll.
func chains(f family, mark uint32, masqueradeAll bool) []baseChain {
	m := "0x" + strconv.FormatUint(uint64(mark), 16)
	unmark := "0x" + strconv.FormatUint(uint64(^mark), 16)
	svc := f.IP + " daddr . meta l4proto . th dport "
	notPods := f.IP + " saddr != @cluster-cidrs "
	if masqueradeAll {
		notPods = ""
	}
	markRules := []string{
		svc + "@cluster-ips " + notPods + "meta mark set meta mark | " + m,
		svc + "@external-masq meta mark set meta mark | " + m,
	}
	shortCircuit := "dnat " + f.IP + " addr . port to " + svc + "map @short-circuit-to"
	endpointRules := []string{
		"ct state new " + svc + "@no-endpoints reject",
		"ct state new " + svc + "@no-local-endpoints drop",
	}
	return []baseChain{
		{name: "nat-prerouting", typ: knftables.NATType, hook: knftables.PreroutingHook, prio: prioShortCircuit,
			rules: []string{f.IP + " saddr @cluster-cidrs " + shortCircuit}},
		{name: "nat-output", typ: knftables.NATType, hook: knftables.OutputHook, prio: prioShortCircuit,
			rules: []string{svc + "@short-circuit meta mark set meta mark | " + m, shortCircuit}},
		{name: "prerouting", typ: knftables.FilterType, hook: knftables.PreroutingHook, prio: prioBeforeIPVS,
			rules: markRules},
		{name: "input", typ: knftables.FilterType, hook: knftables.InputHook, prio: prioBeforeIPVS,
			rules: append([]string{
				svc + "@firewall " + svc + ". " + f.IP + " saddr != @firewall-allow drop",
			}, endpointRules...)},
		{name: "output", typ: knftables.FilterType, hook: knftables.OutputHook, prio: prioBeforeIPVS,
			rules: append(slices.Clone(markRules), endpointRules...)},
		{name: "postrouting", typ: knftables.NATType, hook: knftables.PostroutingHook, prio: prioSNAT,
			rules: []string{
				"meta mark & " + m + " != 0 meta mark set meta mark & " + unmark + " masquerade fully-random",
				// A pod reaching itself through a virtual address would
				// otherwise answer itself directly.
				f.IP + " saddr . " + f.IP + " daddr @hairpin masquerade fully-random",
			}},
	}
}

// skeleton adds the table, its sets (flushed) and chains (flushed, with
// their rules) to tx: on a full sync the table is rewritten in one
// transaction.
func skeleton(tx *knftables.Transaction, f family, mark uint32, masqueradeAll bool) {
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("lbkit IPVS backend: what IPVS cannot do")})
	for _, s := range setSpecs {
		if s.value != nil {
			tx.Add(&knftables.Map{Name: s.name, Type: s.typ(f) + " : " + s.value(f)})
			tx.Flush(&knftables.Map{Name: s.name})
			continue
		}
		ks := &knftables.Set{Name: s.name, Type: s.typ(f)}
		if s.interval {
			ks.Flags = []knftables.SetFlag{knftables.IntervalFlag}
		}
		tx.Add(ks)
		tx.Flush(&knftables.Set{Name: s.name})
	}
	for _, c := range chains(f, mark, masqueradeAll) {
		tx.Add(&knftables.Chain{
			Name:     c.name,
			Type:     knftables.PtrTo(c.typ),
			Hook:     knftables.PtrTo(c.hook),
			Priority: knftables.PtrTo(knftables.BaseChainPriority(strconv.Itoa(c.prio))),
		})
		tx.Flush(&knftables.Chain{Name: c.name})
		for _, r := range c.rules {
			tx.Add(&knftables.Rule{Chain: c.name, Rule: r})
		}
	}
}

// element is the knftables element of set id written as e: "key" for a
// set, "key : value" for a map. A map's changed value is a delete of the
// old element and an add of the new one, deletes going first.
func element(id setID, e string) *knftables.Element {
	if setSpecs[id].value == nil {
		return &knftables.Element{Set: setSpecs[id].name, Key: []string{e}}
	}
	k, v, _ := strings.Cut(e, " : ")
	return &knftables.Element{Map: setSpecs[id].name, Key: []string{k}, Value: []string{v}}
}

// readRecord returns the virtual servers on node addresses the table records as
// lbkit's, and nil without error when there is no table.
func readRecord(ctx context.Context, nft knftables.Interface) (map[Key]bool, error) {
	elems, err := nft.ListElements(ctx, "set", setSpecs[setNodeAddrServers].name)
	if err != nil {
		if knftables.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list set %s: %w", setSpecs[setNodeAddrServers].name, err)
	}
	out := make(map[Key]bool, len(elems))
	for _, e := range elems {
		if k, ok := parseKeyElement(e.Key); ok {
			out[k] = true
		}
	}
	return out, nil
}

// parseKeyElement reads an element of a set of type addr . inet_proto .
// inet_service, as knftables lists it (one string per field, or all in one).
func parseKeyElement(key []string) (Key, bool) {
	if len(key) == 1 {
		key = strings.Split(key[0], " . ")
	}
	if len(key) != 3 {
		return Key{}, false
	}
	a, err := netip.ParseAddr(strings.TrimSpace(key[0]))
	proto := parseNFTProto(strings.TrimSpace(key[1]))
	port, perr := strconv.ParseUint(strings.TrimSpace(key[2]), 10, 16)
	if err != nil || proto == "" || perr != nil {
		return Key{}, false
	}
	return Key{a.Unmap(), uint16(port), proto}, true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
