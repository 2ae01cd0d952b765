package netlab

import "strings"

// Variant is one set of backend options a Network is built for: the
// address family, and the options users set that change the rules a
// backend writes (backendtest's suite runs every scenario in the variants
// it applies to). Whoever configures the backend reads them from the
// Network's accessors (ClusterCIDRs, NodePortAddresses, NodeIPs), so the
// backend runs with the options the variant names.
type Variant struct {
	// IPv6 runs the scenario in an IPv6 Network, with IPv6 Services and
	// EndpointSlices and a Tracker for IPv6.
	IPv6 bool
	// NodePortAddresses asks the backend to serve node ports only on
	// Network.NodePortAddresses: NodeIP, not NodeIP2. They hold a prefix
	// of each family, as a dual-stack proxy passes one list to both.
	NodePortAddresses bool
	// OtherFamilyNodePortAddresses gives the backend NodePortAddresses of
	// the other family only. This family then has none, which means every
	// node address, as in kube-proxy.
	OtherFamilyNodePortAddresses bool
	// NoClusterCIDRs asks the backend to be given no pod ranges
	// (Network.ClusterCIDRs is empty): no source counts as a pod.
	NoClusterCIDRs bool
	// MasqueradeAll asks the backend to masquerade all cluster-IP traffic
	// (Network.MasqueradeAll), kube-proxy's masqueradeAll.
	MasqueradeAll bool
}

// Names of a Variant's path elements (backendtest's subtest names, and
// keys of its SuiteOptions.Skip).
const (
	VariantIPv4              = "IPv4"
	VariantIPv6              = "IPv6"
	VariantNodePortAddresses = "NodePortAddresses"
	VariantOtherFamilyNPA    = "OtherFamilyNodePortAddresses"
	VariantNoClusterCIDRs    = "NoClusterCIDRs"
	VariantMasqueradeAll     = "MasqueradeAll"
)

// Elements are the variant's path elements: the family, then the option
// set, if any.
func (v Variant) Elements() []string {
	out := []string{VariantIPv4}
	if v.IPv6 {
		out[0] = VariantIPv6
	}
	if v.NodePortAddresses {
		out = append(out, VariantNodePortAddresses)
	}
	if v.OtherFamilyNodePortAddresses {
		out = append(out, VariantOtherFamilyNPA)
	}
	if v.NoClusterCIDRs {
		out = append(out, VariantNoClusterCIDRs)
	}
	if v.MasqueradeAll {
		out = append(out, VariantMasqueradeAll)
	}
	return out
}

// String is the variant's subtest path, e.g. "IPv6/NodePortAddresses".
func (v Variant) String() string { return strings.Join(v.Elements(), "/") }
