package endpoints

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// TestNamesAgreeWithValidation: the fast paths accept exactly what the
// API server's validation accepts.
func TestNamesAgreeWithValidation(t *testing.T) {
	names := []string{"", "a", "A", "-a", "a-", "a-b", "1a", "a1", "a.b", ".a", "a.", "a..b", "a_b", "a b", "a\nb", `a"b`, "a{b",
		"ä", strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 127) + "a",
		"kube-system", "x1.y-2.z", "1.2.3.4"}
	for _, s := range names {
		if got, want := BadLabel(s) == "", len(validation.IsDNS1123Label(s)) == 0; got != want {
			t.Errorf("BadLabel(%q) accepts: %v, validation: %v", s, got, want)
		}
		if got, want := BadServiceName(s) == "", len(validation.IsDNS1035Label(s)) == 0; got != want {
			t.Errorf("BadServiceName(%q) accepts: %v, validation: %v", s, got, want)
		}
		if got, want := BadSubdomain(s) == "", len(validation.IsDNS1123Subdomain(s)) == 0; got != want {
			t.Errorf("BadSubdomain(%q) accepts: %v, validation: %v", s, got, want)
		}
	}
}

// FuzzNames compares the fast paths with the validation package.
func FuzzNames(f *testing.F) {
	for _, s := range []string{"a", "a-b.c", "-", "1a", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := BadLabel(s) == "", len(validation.IsDNS1123Label(s)) == 0; got != want {
			t.Errorf("BadLabel(%q) accepts: %v, validation: %v", s, got, want)
		}
		if got, want := BadServiceName(s) == "", len(validation.IsDNS1035Label(s)) == 0; got != want {
			t.Errorf("BadServiceName(%q) accepts: %v, validation: %v", s, got, want)
		}
		if got, want := BadSubdomain(s) == "", len(validation.IsDNS1123Subdomain(s)) == 0; got != want {
			t.Errorf("BadSubdomain(%q) accepts: %v, validation: %v", s, got, want)
		}
	})
}
