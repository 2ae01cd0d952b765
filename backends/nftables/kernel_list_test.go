//go:build linux

package nftables

import (
	"bytes"
	"encoding/binary"
	"testing"

	gnft "github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// containerFields returns the key fields the writer encodes a container's
// elements with, from the container's declaration in the skeleton.
func containerFields(t testing.TB, fam family, ct container) []setField {
	t.Helper()
	b := newBuilder(nil, Spec{}.withDefaults())
	b.fam = fam
	s := b.skeleton().containers[ct]
	return s.key.fields()
}

// verdictBytes encodes a verdict as the kernel dumps it in an element's
// data: the attributes inside NFTA_DATA_VERDICT.
func verdictBytes(t testing.TB, code int32, chain string) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	ae.Uint32(unix.NFTA_VERDICT_CODE, uint32(code))
	if chain != "" {
		ae.String(unix.NFTA_VERDICT_CHAIN, chain)
	}
	b, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeElement(t *testing.T) {
	for _, tc := range []struct {
		fam   family
		ct    container
		key   string
		code  int32
		chain string
		value string
	}{
		{ipv4, cServiceIPs, "10.96.0.10 . tcp . 80", unix.NFT_GOTO, "svc-x", "goto svc-x"},
		{ipv6, cServiceIPs, "fd00::a . udp . 53", unix.NFT_GOTO, "svc-y", "goto svc-y"},
		{ipv4, cNoEndpointNodePorts, "sctp . 30000", 0, "", "drop"},
		{ipv4, cFirewallIPs, "203.0.113.7 . tcp . 443", unix.NFT_JUMP, "fw-z", "jump fw-z"},
		{ipv4, cHairpin, "10.244.1.5 . 10.244.1.5", 0, "", ""},
		{ipv4, cHealthCheck, "32000", 0, "", ""},
	} {
		key, err := encodeKey(tc.key, containerFields(t, tc.fam, tc.ct))
		if err != nil {
			t.Fatalf("encode %q: %v", tc.key, err)
		}
		e := gnft.SetElement{Key: key}
		if tc.ct.isMap() {
			e.Val = verdictBytes(t, tc.code, tc.chain)
		}
		gotKey, gotValue, err := decodeElement(tc.fam, tc.ct, e)
		if err != nil || gotKey != tc.key || gotValue != tc.value {
			t.Errorf("%s %q: decoded %q : %q, %v; want %q : %q", tc.ct.name(), tc.key, gotKey, gotValue, err, tc.key, tc.value)
		}
	}
	// A key of the wrong length is an error, not a panic or a wrong text.
	if _, _, err := decodeElement(ipv4, cServiceIPs, gnft.SetElement{Key: []byte{1, 2, 3}}); err == nil {
		t.Errorf("a 3-byte key decoded")
	}
	if _, _, err := decodeElement(ipv4, cServiceIPs, gnft.SetElement{Key: make([]byte, 12)}); err == nil {
		t.Errorf("a map element without a verdict decoded")
	}
}

// FuzzDecodeElement feeds arbitrary kernel answers to the lister: it must
// never panic, and whatever it accepts must encode back to the same key
// (so a listed element is deleted or kept by exactly the key it has).
func FuzzDecodeElement(f *testing.F) {
	f.Add(uint8(cServiceIPs), false, []byte{10, 96, 0, 10, 6, 0, 0, 0, 0, 80, 0, 0}, []byte{8, 0, 1, 0, 255, 255, 255, 252})
	f.Add(uint8(cHealthCheck), false, []byte{0x7d, 0}, []byte(nil))
	f.Add(uint8(cHairpin), true, bytes.Repeat([]byte{1}, 32), []byte(nil))
	f.Fuzz(func(t *testing.T, c uint8, v6 bool, key, val []byte) {
		ct := container(c % uint8(numContainers))
		fam := ipv4
		if v6 {
			fam = ipv6
		}
		text, _, err := decodeElement(fam, ct, gnft.SetElement{Key: key, Val: val})
		if err != nil {
			return
		}
		again, err := encodeKey(text, containerFields(t, fam, ct))
		if err != nil {
			t.Fatalf("decoded %q from %x, which does not encode: %v", text, key, err)
		}
		text2, _, err := decodeElement(fam, ct, gnft.SetElement{Key: again, Val: val})
		if err != nil || text2 != text {
			t.Fatalf("%x -> %q -> %x -> %q, %v", key, text, again, text2, err)
		}
	})
}
