package topology

import (
	"net/netip"
	"testing"

	"github.com/lbkit/lbkit/endpoints"
)

// benchEndpoints returns n ready endpoints spread over three nodes and, when
// hinted, over three zones; the first third is on this node.
func benchEndpoints(n int, hinted bool) []endpoints.Endpoint {
	zoneNames := []string{"zone-a", "zone-b", "zone-c"}
	eps := make([]endpoints.Endpoint, n)
	for i := range eps {
		eps[i] = endpoints.Endpoint{
			Addr:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 244, byte(i / 250), byte(i%250 + 1)}), 8080),
			NodeName: "node-" + string(rune('1'+i%3)),
			Zone:     zoneNames[i%3],
			Ready:    true,
			Serving:  true,
			Local:    i%3 == 0,
		}
		if hinted {
			eps[i].ZoneHints = zoneNames[i%3 : i%3+1]
		}
	}
	return eps
}

func BenchmarkCategorize(b *testing.B) {
	benchmarks := []struct {
		name   string
		eps    []endpoints.Endpoint
		policy Policy
		mode   string
	}{
		{"10 endpoints/no hints", benchEndpoints(10, false), Policy{}, ModeNone},
		{"10 endpoints/zone hints", benchEndpoints(10, true), Policy{}, ModePreferSameZone},
		{"10 endpoints/zone hints/eTP Local", benchEndpoints(10, true), Policy{ExternalLocal: true, ExternallyAccessible: true}, ModePreferSameZone},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			var r Result
			for b.Loop() {
				r = Categorize(bm.eps, bm.policy, thisNode)
			}
			if r.Mode != bm.mode || len(r.Cluster) == 0 {
				b.Fatalf("Categorize gave mode %q and %d cluster endpoints; the benchmark input is wrong", r.Mode, len(r.Cluster))
			}
		})
	}
}
