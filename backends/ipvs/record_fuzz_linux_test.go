//go:build linux

package ipvs

import (
	"net/netip"
	"testing"
)

// FuzzKeyElement: the record of virtual servers on node addresses is kept
// as set elements. Whatever text parseKeyElement accepts is a key that
// writes back (keyElement) as text it reads as the same key, and every key
// lbkit writes reads back as itself.
func FuzzKeyElement(f *testing.F) {
	for _, s := range []string{"10.0.0.1 . tcp . 80", "fd00::1 . udp . 53", "10.0.0.1 . 132 . 9", "::ffff:1.2.3.4 . tcp . 1",
		"10.0.0.1 . icmp . 0", "10.0.0.1 . tcp . 65536", "1.2.3.4 . tcp", ""} {
		f.Add(s, []byte{10, 0, 0, 1}, uint16(80), uint8(0))
	}
	f.Fuzz(func(t *testing.T, text string, addr []byte, port uint16, proto uint8) {
		if k, ok := parseKeyElement([]string{text}); ok {
			again, ok := parseKeyElement([]string{keyElement(k)})
			if !ok || again != k {
				t.Fatalf("%q reads as %v, written as %q, which reads as %v (%v)", text, k, keyElement(k), again, ok)
			}
			if !k.Addr.IsValid() || k.Addr.Is4In6() || k.Protocol == "" {
				t.Fatalf("%q reads as %v: want a valid unmapped address and a known protocol", text, k)
			}
		}
		a, ok := netip.AddrFromSlice(addr)
		if !ok || a.Zone() != "" {
			return
		}
		k := Key{Addr: a.Unmap(), Port: port, Protocol: protoName([]uint16{6, 17, 132}[proto%3])}
		if got, ok := parseKeyElement([]string{keyElement(k)}); !ok || got != k {
			t.Fatalf("%v written as %q reads as %v (%v)", k, keyElement(k), got, ok)
		}
	})
}
