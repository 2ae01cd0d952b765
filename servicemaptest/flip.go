package servicemaptest

import (
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/servicemap"
)

// FlipReady returns a function that, on each call, applies the next of two
// versions of slice to tr (its first endpoint not ready, then as given,
// and so on) and returns the Tracker's new Snapshot: the one-endpoint
// update that sync benchmarks measure. slice must have an endpoint and
// already be in tr.
func FlipReady(tr *servicemap.Tracker, slice *discoveryv1.EndpointSlice) func() *servicemap.Snapshot {
	flipped := slice.DeepCopy()
	flipped.Endpoints[0].Conditions.Ready = Ptr(false)
	versions := [2]*discoveryv1.EndpointSlice{flipped, slice}
	i := 0
	return func() *servicemap.Snapshot {
		tr.OnEndpointSliceUpdate(nil, versions[i%2])
		i++
		return tr.Snapshot()
	}
}
