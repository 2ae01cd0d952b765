package servicemap

import (
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/client-go/tools/cache"
)

// ServiceHandler returns a client-go event handler that feeds Service events
// to the tracker. Register it on a Service informer.
func (t *Tracker) ServiceHandler() cache.ResourceEventHandler {
	return handler[*v1.Service]{add: t.OnServiceAdd, update: t.OnServiceUpdate, del: t.OnServiceDelete}
}

// EndpointSliceHandler returns a client-go event handler for an
// EndpointSlice informer (discovery.k8s.io/v1).
func (t *Tracker) EndpointSliceHandler() cache.ResourceEventHandler {
	return handler[*discoveryv1.EndpointSlice]{add: t.OnEndpointSliceAdd, update: t.OnEndpointSliceUpdate, del: t.OnEndpointSliceDelete}
}

// NodeHandler returns a client-go event handler for a Node informer; only
// the tracker's own node matters, so a field selector on metadata.name
// keeps the informer small.
func (t *Tracker) NodeHandler() cache.ResourceEventHandler {
	return handler[*v1.Node]{add: t.OnNodeAdd, update: t.OnNodeUpdate, del: t.OnNodeDelete}
}

// ServiceCIDRHandler returns a client-go event handler for a
// networking.k8s.io/v1 ServiceCIDR informer: the snapshot's ServiceCIDRs
// follow the objects.
func (t *Tracker) ServiceCIDRHandler() cache.ResourceEventHandler {
	return handler[*networkingv1.ServiceCIDR]{add: t.OnServiceCIDRAdd, update: t.OnServiceCIDRUpdate, del: t.OnServiceCIDRDelete}
}

// handler adapts typed callbacks to cache.ResourceEventHandler. Objects of
// another type are ignored; delete tombstones (DeletedFinalStateUnknown) are
// unwrapped.
type handler[T any] struct {
	add    func(T)
	update func(old, new T)
	del    func(T)
}

func (h handler[T]) OnAdd(obj any, _ bool) {
	if o, ok := obj.(T); ok {
		h.add(o)
	}
}

func (h handler[T]) OnUpdate(oldObj, newObj any) {
	o, ok1 := oldObj.(T)
	n, ok2 := newObj.(T)
	if ok1 && ok2 {
		h.update(o, n)
	} else if ok2 {
		h.add(n)
	}
}

func (h handler[T]) OnDelete(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if o, ok := obj.(T); ok {
		h.del(o)
	}
}
