//go:build linux

package userspace

import (
	"context"
	"strconv"
	"strings"

	"sigs.k8s.io/knftables"
)

// The netfilter half: what sockets cannot express, in one small table.
// A frontend without endpoints needs nothing (no socket: the kernel refuses
// it). Three sets of frontends (address . protocol . port) need a drop of
// new connections before they reach the socket:
//
//   - dropped: cluster IPs of an internalTrafficPolicy=Local port without a
//     local endpoint;
//   - external-dropped: external frontends of an externalTrafficPolicy=Local
//     port without a local endpoint, unless the client is a pod or the node
//     (those are short-circuited to every endpoint);
//   - firewall: load-balancer IPs with source ranges, for sources outside
//     firewall-allow.
//
// The table is rewritten whole at every sync, in one transaction.

func (n *netNS) nft(ipv6 bool, table string) (knftables.Interface, error) {
	fam := knftables.IPv4Family
	if ipv6 {
		fam = knftables.IPv6Family
	}
	var nft knftables.Interface
	err := n.do(func() error {
		var err error
		nft, err = knftables.New(fam, table)
		return err
	})
	return nft, err
}

func (n *netNS) syncTable(ctx context.Context, table string, d *desired) error {
	nft, err := n.nft(d.ipv6, table)
	if err != nil {
		return err
	}
	ip, addr := d.family().IP, d.family().AddrType
	key := addr + " . inet_proto . inet_service"
	tx := nft.NewTransaction()
	// Flushing the table empties its chains but not its sets: each set is
	// flushed too.
	tx.Add(&knftables.Table{})
	tx.Flush(&knftables.Table{})
	for _, s := range []*knftables.Set{
		{Name: "dropped", Type: key},
		{Name: "external-dropped", Type: key},
		{Name: "firewall", Type: key},
		{Name: "firewall-allow", Type: key + " . " + addr, Flags: []knftables.SetFlag{knftables.IntervalFlag}},
		{Name: "pods", Type: addr, Flags: []knftables.SetFlag{knftables.IntervalFlag}},
	} {
		tx.Add(s)
		tx.Flush(s)
	}
	tx.Add(&knftables.Chain{Name: "input", Type: knftables.PtrTo(knftables.FilterType),
		Hook: knftables.PtrTo(knftables.InputHook), Priority: knftables.PtrTo(knftables.FilterPriority + "-10")})
	svc := "ct state new " + ip + " daddr . meta l4proto . th dport "
	tx.Add(&knftables.Rule{Chain: "input", Rule: svc + "@dropped drop"})
	tx.Add(&knftables.Rule{Chain: "input", Rule: svc + "@external-dropped fib saddr type != local " + ip + " saddr != @pods drop"})
	tx.Add(&knftables.Rule{Chain: "input", Rule: svc + "@firewall " + ip + " daddr . meta l4proto . th dport . " + ip + " saddr != @firewall-allow drop"})
	elem := func(set string, k frontendKey, extra ...string) {
		tx.Add(&knftables.Element{Set: set, Key: append([]string{k.addr.Addr().String(), strings.ToLower(string(k.proto)), strconv.Itoa(int(k.addr.Port()))}, extra...)})
	}
	for _, k := range d.drop {
		elem("dropped", k)
	}
	for _, k := range d.dropExternal {
		elem("external-dropped", k)
	}
	for _, k := range d.firewall {
		elem("firewall", k)
	}
	for _, a := range d.allow {
		elem("firewall-allow", a.key, a.source.String())
	}
	for _, p := range d.pods {
		tx.Add(&knftables.Element{Set: "pods", Key: []string{p.String()}})
	}
	return n.do(func() error { return nft.Run(ctx, tx) })
}

func (n *netNS) deleteTable(ctx context.Context, table string, ipv6 bool) error {
	nft, err := n.nft(ipv6, table)
	if err != nil {
		return err
	}
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	return n.do(func() error { return nft.Run(ctx, tx) })
}
