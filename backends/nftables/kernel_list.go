//go:build linux

package nftables

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	gnft "github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Listing over netlink, straight from the kernel's dumps: one dump of the
// family's chains for all shards, then per table one dump of its sets and
// one per shared container present. knftables' listing would dump every
// chain of the family once per table and run nft once per container.

func tableFamily(fam family) gnft.TableFamily {
	if fam.Is6 {
		return gnft.TableFamilyIPv6
	}
	return gnft.TableFamilyIPv4
}

// listChainsByTable returns the names of the family's chains, by table.
func listChainsByTable(fam family) (map[string][]string, error) {
	c, err := gnft.New()
	if err != nil {
		return nil, err
	}
	chains, err := c.ListChainsOfTableFamily(tableFamily(fam))
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	out := map[string][]string{}
	for _, ch := range chains {
		out[ch.Table.Name] = append(out[ch.Table.Name], ch.Name)
	}
	return out, nil
}

// listTableNetlink lists one table's sets and maps and the elements of its
// shared containers; chains come from listChainsByTable. A missing table
// is empty. dumps counts the listing requests.
func listTableNetlink(fam family, table string, chains []string, dumps *int) (*kernelState, error) {
	k := &kernelState{chains: chains, sets: map[string][]string{}, elems: map[elemID]string{}}
	if len(chains) == 0 {
		// Every table lbkit made has chains; none means no table (or a
		// foreign empty one, which the setup transaction fills).
		return k, nil
	}
	c, err := gnft.New()
	if err != nil {
		return nil, err
	}
	t := &gnft.Table{Name: table, Family: tableFamily(fam)}
	*dumps++
	sets, err := c.GetSets(t)
	if notFound(err) {
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	byName := map[string]container{}
	for ct := range numContainers {
		byName[ct.name()] = ct
	}
	for _, s := range sets {
		kind := "set"
		if s.IsMap {
			kind = "map"
		}
		k.sets[kind] = append(k.sets[kind], s.Name)
		ct, shared := byName[s.Name]
		if !shared || s.IsMap != ct.isMap() {
			continue
		}
		s.Table = t
		*dumps++
		elems, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("list %s %s: %w", kind, s.Name, err)
		}
		for _, e := range elems {
			key, value, err := decodeElement(fam, ct, e)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", kind, s.Name, err)
			}
			k.elems[elemID{ct, key}] = value
		}
	}
	return k, nil
}

// decodeElement turns a container's element back into the text the
// builder writes for it, so that listed and wanted elements compare as
// strings.
func decodeElement(fam family, ct container, e gnft.SetElement) (key, value string, err error) {
	d := keyDecoder{b: e.Key, fam: fam}
	switch ct {
	case cServiceIPs, cNoEndpointServices, cFirewallIPs:
		key = d.addr() + " . " + d.proto() + " . " + d.port()
	case cServiceNodePorts, cNoEndpointNodePorts:
		key = d.proto() + " . " + d.port()
	case cHairpin:
		key = d.addr() + " . " + d.addr()
	case cHealthCheck:
		key = d.port()
	case cClusterIPs:
		key = d.addr()
	}
	if d.bad || len(d.b) != 0 {
		return "", "", fmt.Errorf("element with an unexpected key %x", e.Key)
	}
	if ct.isMap() {
		if value, err = verdictText(e.Val); err != nil {
			return "", "", err
		}
	}
	return key, value, nil
}

// verdictText decodes a verdict map element's data, which google/nftables
// hands over undecoded: the attributes of NFTA_DATA_VERDICT.
func verdictText(b []byte) (string, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return "", fmt.Errorf("verdict: %w", err)
	}
	ad.ByteOrder = binary.BigEndian
	code, hasCode, chain := int32(0), false, ""
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_VERDICT_CODE:
			code, hasCode = int32(ad.Uint32()), true
		case unix.NFTA_VERDICT_CHAIN:
			chain = ad.String()
		}
	}
	if err := ad.Err(); err != nil || !hasCode {
		return "", fmt.Errorf("map element without a readable verdict (%x)", b)
	}
	switch code {
	case unix.NFT_GOTO:
		return "goto " + chain, nil
	case unix.NFT_JUMP:
		return "jump " + chain, nil
	case 0: // NF_DROP
		return "drop", nil
	case 1: // NF_ACCEPT
		return "accept", nil
	}
	return "", fmt.Errorf("unexpected verdict %d", code)
}

// keyDecoder reads the fields of a key. Every field of a concatenation
// takes a multiple of four bytes; a key of one port alone takes two.
type keyDecoder struct {
	b   []byte
	fam family
	bad bool
}

func (d *keyDecoder) take(n, padded int) []byte {
	if len(d.b) < n {
		d.bad = true
		return make([]byte, n)
	}
	out := d.b[:n]
	d.b = d.b[min(padded, len(d.b)):]
	return out
}

func (d *keyDecoder) addr() string {
	if d.fam.Is6 {
		return netip.AddrFrom16([16]byte(d.take(16, 16))).String()
	}
	return netip.AddrFrom4([4]byte(d.take(4, 4))).String()
}

func (d *keyDecoder) proto() string {
	switch p := d.take(1, 4)[0]; p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 132:
		return "sctp"
	default:
		return strconv.Itoa(int(p))
	}
}

func (d *keyDecoder) port() string {
	return strconv.Itoa(int(binary.BigEndian.Uint16(d.take(2, 4))))
}
