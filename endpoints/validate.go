package endpoints

import (
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// SpecialAddr says why a is not usable as an endpoint, external IP or
// load-balancer IP ("" when it is): the API server refuses unspecified,
// loopback and link-local addresses there (so does lbkit, at the snapshot
// boundary, for objects that did not come through one), and lbkit also
// refuses multicast. 169.254.169.254, the cloud metadata address, is
// link-local.
func SpecialAddr(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	}
	return ""
}

// BadLabel says why s is not a valid DNS-1123 label, the form of
// namespaces and port names ("" when it is). Names that pass contain only
// [a-z0-9-]: no control characters, quotes or braces can reach a rule's
// text through them.
func BadLabel(s string) string {
	if isLabel(s, false) {
		return ""
	}
	if errs := validation.IsDNS1123Label(s); len(errs) > 0 {
		return strings.Join(errs, "; ")
	}
	return ""
}

// BadServiceName says why s is not a valid Service name (a DNS-1035
// label), "" when it is.
func BadServiceName(s string) string {
	if isLabel(s, true) {
		return ""
	}
	if errs := validation.IsDNS1035Label(s); len(errs) > 0 {
		return strings.Join(errs, "; ")
	}
	return ""
}

// BadSubdomain says why s is not a valid DNS-1123 subdomain, the form of
// object and node names ("" when it is).
func BadSubdomain(s string) string {
	if len(s) <= 253 && s != "" && !strings.HasPrefix(s, ".") && !strings.HasSuffix(s, ".") {
		ok := true
		for part := range strings.SplitSeq(s, ".") {
			ok = ok && isLabel(part, false)
		}
		if ok {
			return ""
		}
	}
	if errs := validation.IsDNS1123Subdomain(s); len(errs) > 0 {
		return strings.Join(errs, "; ")
	}
	return ""
}

// isLabel is the fast path of the checks above, without the regular
// expressions (one call per port and endpoint): a DNS label of lowercase
// letters, digits and inner hyphens, starting with a letter when
// letterFirst. The validation package words the error when it fails.
func isLabel(s string, letterFirst bool) bool {
	if s == "" || len(s) > 63 || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' || c == '-':
			if i == 0 && (letterFirst || c == '-') {
				return false
			}
		default:
			return false
		}
	}
	return true
}
