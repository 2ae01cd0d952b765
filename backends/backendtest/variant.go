package backendtest

import "github.com/lbkit/lbkit/backends/netlab"

// Variant is netlab.Variant: the options one run of the suite configures
// the backend with.
type Variant = netlab.Variant

// Names of the path elements of Run's subtests, usable as keys of
// SuiteOptions.Skip.
const (
	VariantIPv4              = netlab.VariantIPv4
	VariantIPv6              = netlab.VariantIPv6
	VariantNodePortAddresses = netlab.VariantNodePortAddresses
	VariantOtherFamilyNPA    = netlab.VariantOtherFamilyNPA
	VariantNoClusterCIDRs    = netlab.VariantNoClusterCIDRs
	VariantMasqueradeAll     = netlab.VariantMasqueradeAll
)

// option is a backend option a scenario's behaviour depends on; the
// suite runs the scenario again in the variant that sets it.
type option int

const (
	optNodePortAddresses option = 1 << iota
	optOtherFamilyNPA
	optClusterCIDRs
	optMasqueradeAll
)

// optionVariants are the variants beyond a family's defaults, each with
// the option whose scenarios it runs.
var optionVariants = []struct {
	opt option
	set func(*Variant)
}{
	{optNodePortAddresses, func(v *Variant) { v.NodePortAddresses = true }},
	{optOtherFamilyNPA, func(v *Variant) { v.OtherFamilyNodePortAddresses = true }},
	{optClusterCIDRs, func(v *Variant) { v.NoClusterCIDRs = true }},
	{optMasqueradeAll, func(v *Variant) { v.MasqueradeAll = true }},
}
