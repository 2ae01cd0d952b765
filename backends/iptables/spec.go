package iptables

import (
	"cmp"
	"net/netip"
	"strings"

	"github.com/lbkit/lbkit/backends/internal/check"
)

// Spec describes what the backend programs, and what Render renders: pure
// data, the same on every OS. The zero value is usable.
type Spec struct {
	// Prefix starts the name of every chain lbkit creates ("LBKIT" by
	// default); it must be unique to this backend instance. A trailing "-"
	// is dropped. It is letters, digits, '_' and '.', with '-' inside, and
	// at most 7 characters: the longest chain name, Prefix-SVC-<16
	// characters of hash>, must fit iptables' 28.
	Prefix string
	// ClusterCIDRs are the pod CIDRs, at most one per family (as
	// kube-proxy's --cluster-cidr: "not from the pod CIDR" is one rule's
	// match). Traffic to a cluster IP from outside them is masqueraded,
	// and pod traffic to an external address of an
	// externalTrafficPolicy=Local service goes to cluster endpoints. Empty:
	// no source counts as a pod, as kube-proxy without a local-traffic
	// detector.
	ClusterCIDRs []netip.Prefix
	// MasqueradeAll masquerades all traffic to cluster IPs, pods' included
	// (kube-proxy's masqueradeAll).
	MasqueradeAll bool
	// NodePortAddresses restricts NodePorts to local addresses in these
	// CIDRs. Empty: every local address except loopback. Loopback never
	// accepts NodePorts (CVE-2020-8558).
	NodePortAddresses []netip.Prefix
	// MasqueradeMark is the mark bit that asks for masquerade (0x4000 when
	// zero); one bit.
	MasqueradeMark uint32
}

// maxChainName is the longest chain name iptables accepts.
const maxChainName = 28

func (sp Spec) withDefaults() Spec {
	if sp.Prefix == "" {
		sp.Prefix = "LBKIT"
	}
	sp.Prefix = strings.TrimSuffix(sp.Prefix, "-")
	if sp.MasqueradeMark == 0 {
		sp.MasqueradeMark = 0x4000
	}
	return sp
}

// Validate reports, with an error wrapping backends.ErrInvalidConfig, a
// spec that cannot be programmed as it says (after the defaults of its
// zero fields): a Prefix iptables would refuse or misread in a rule, or
// one making chain names too long; an invalid prefix in ClusterCIDRs or
// NodePortAddresses, or two ClusterCIDRs of one family; a MasqueradeMark
// of more than one bit. New checks it;
// Render and Jumps do not, so their callers may.
func (sp Spec) Validate() error {
	sp = sp.withDefaults()
	if err := checkPrefix(sp.Prefix); err != nil {
		return err
	}
	return cmp.Or(check.Addresses("iptables", nil, sp.ClusterCIDRs, sp.NodePortAddresses),
		onePerFamily(sp.ClusterCIDRs),
		check.Mark("iptables", sp.MasqueradeMark))
}

// onePerFamily refuses two pod CIDRs of one family: the rule that
// masquerades cluster-IP traffic from outside the pods can say "not from
// this prefix" only once.
func onePerFamily(cidrs []netip.Prefix) error {
	var seen [2]bool
	for _, p := range cidrs {
		i := 0
		if p.Addr().Is6() {
			i = 1
		}
		if seen[i] {
			return check.Invalid("iptables", "Spec.ClusterCIDRs %v has two prefixes of one family; iptables takes one per family, as kube-proxy's --cluster-cidr", cidrs)
		}
		seen[i] = true
	}
	return nil
}

// checkPrefix checks a chain-name prefix, the trailing "-" dropped.
func checkPrefix(p string) error {
	if longest := len(p) + len(kindNames[chainSVC]) + hashLen; longest > maxChainName {
		return check.Invalid("iptables", "Spec.Prefix %q makes chain names of %d characters, more than iptables' %d",
			p, longest, maxChainName)
	}
	if p == "" {
		return check.Invalid("iptables", "Spec.Prefix is only '-'")
	}
	for i, c := range []byte(p) {
		ok := 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-' && i > 0
		if !ok {
			return check.Invalid("iptables", "Spec.Prefix %q: only letters, digits, '_', '.' and an inner '-' make a chain name every rule reads back", p)
		}
	}
	return nil
}
