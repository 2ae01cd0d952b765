package endpoints_test

import (
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/endpoints"
)

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = rejected
	}{
		{"10.1.2.3", "10.1.2.3"},
		{"0.0.0.0", "0.0.0.0"},
		{"255.255.255.255", "255.255.255.255"},
		// Leading zeros are decimal, as in Kubernetes' ParseIPSloppy, not
		// octal as in inet_aton: 010 is ten, not eight.
		{"010.001.002.003", "10.1.2.3"},
		{"1.2.3.04", "1.2.3.4"},
		{"000.000.000.000", "0.0.0.0"},
		{"012.034.056.077", "12.34.56.77"},
		{"::1", "::1"},
		{"fd00::1", "fd00::1"},
		{"FD00:0:0:0:0:0:0:1", "fd00::1"},
		{"::", "::"},
		{"::ffff:10.1.2.3", "10.1.2.3"},
		{"::ffff:a01:203", "10.1.2.3"},
		{"::10.1.2.3", "::a01:203"}, // IPv4-compatible, not mapped: stays IPv6
		{"64:ff9b::10.1.2.3", "64:ff9b::a01:203"},

		{"", ""},
		{"fe80::1%eth0", ""},
		{"fe80::1%1", ""},
		{"10.1.2.3%eth0", ""},
		{"1.2.3", ""},
		{"1.2.3.4.5", ""},
		{"1..2.3", ""},
		{"1.2.3.", ""},
		{".1.2.3", ""},
		{"256.1.2.3", ""},
		{"1.2.3.300", ""},
		{"1.2.3.-1", ""},
		{"1.2.3.+1", ""},
		{"0x1.2.3.4", ""},
		{"1.2.3.0x4", ""},
		{" 1.2.3.4", ""},
		{"1.2.3.4 ", ""},
		{"1.2.3.4/32", ""},
		{"1.2.3.4:80", ""},
		{"[::1]", ""},
		{"::1::2", ""},
		{"example.com", ""},
		{"1.2.3.٤", ""}, // a non-ASCII digit
	}
	for _, tt := range tests {
		got, ok := endpoints.ParseAddr(tt.in)
		switch {
		case tt.want == "" && ok:
			t.Errorf("ParseAddr(%q) = %v, want rejected", tt.in, got)
		case tt.want != "" && !ok:
			t.Errorf("ParseAddr(%q) rejected, want %s", tt.in, tt.want)
		case tt.want != "" && got != netip.MustParseAddr(tt.want):
			t.Errorf("ParseAddr(%q) = %v, want %s", tt.in, got, tt.want)
		case !ok && got.IsValid():
			t.Errorf("ParseAddr(%q) rejected but returned the valid address %v", tt.in, got)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = rejected
	}{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.0.0.1/8", "10.0.0.0/8"},
		{"10.1.2.3/24", "10.1.2.0/24"},
		{"10.1.2.3/32", "10.1.2.3/32"},
		{"10.1.2.3/0", "0.0.0.0/0"},
		{"010.001.002.003/16", "10.1.0.0/16"},
		{"10.0.0.1/08", "10.0.0.0/8"}, // as net.ParseCIDR reads it
		{"fd00::1/64", "fd00::/64"},
		{"fd00:1:2:3:4:5:6:7/128", "fd00:1:2:3:4:5:6:7/128"},
		{"::/0", "::/0"},
		{"FD00::/8", "fd00::/8"},

		{"", ""},
		{"/8", ""},
		{"10.0.0.1", ""},
		{"10.0.0.1/", ""},
		{"10.0.0.1/33", ""},
		{"10.0.0.1/-1", ""},
		{"10.0.0.1/+8", ""},
		{"10.0.0.1/ 8", ""},
		{"10.0.0.1/8 ", ""},
		{"10.0.0.1/a", ""},
		{"10.0.0.1/8/8", ""},
		{"10.0.0.1/1000", ""},
		{"fd00::/129", ""},
		{"fe80::1%eth0/64", ""},
		{"256.0.0.0/8", ""},
		{"1.2.3/24", ""},
		{"0x0a.0.0.0/8", ""},
	}
	for _, tt := range tests {
		got, ok := endpoints.ParsePrefix(tt.in)
		switch {
		case tt.want == "" && ok:
			t.Errorf("ParsePrefix(%q) = %v, want rejected", tt.in, got)
		case tt.want != "" && !ok:
			t.Errorf("ParsePrefix(%q) rejected, want %s", tt.in, tt.want)
		case tt.want != "" && got != netip.MustParsePrefix(tt.want):
			t.Errorf("ParsePrefix(%q) = %v, want %s", tt.in, got, tt.want)
		case ok && got != got.Masked():
			t.Errorf("ParsePrefix(%q) = %v, not masked", tt.in, got)
		}
	}
}
