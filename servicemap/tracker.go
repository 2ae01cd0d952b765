package servicemap

import (
	"slices"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/topology"
)

// Options configure a Tracker. The zero value tracks IPv4 services for no
// particular node (no endpoint is local, no zone).
type Options struct {
	// NodeName is the node to resolve for: endpoints with this nodeName are
	// local, and the Node of this name gives the zone.
	NodeName string
	// IPFamily is v1.IPv4Protocol (the default) or v1.IPv6Protocol. A
	// dual-stack proxy runs one Tracker per family, as kube-proxy does.
	IPFamily v1.IPFamily
	// ProxyName, when set, makes the tracker handle only Services labelled
	// service.kubernetes.io/service-proxy-name=ProxyName. When empty, it
	// skips every Service carrying that label, as kube-proxy does.
	ProxyName string
}

// Tracker consumes Service, EndpointSlice and Node events and produces
// Snapshots. All methods are safe for concurrent use. Event methods MUST
// NOT be given objects that are modified afterwards (informer objects are
// fine: they are never modified); the Tracker never modifies them.
//
// Work is proportional to what changed: an event marks one service dirty, and
// Snapshot recomputes only dirty services.
type Tracker struct {
	opts   Options
	filter filter

	mu            sync.Mutex
	zone          string
	services      map[string]*trackedService             // by "namespace/name"
	slices        map[string]map[string]*endpoints.Slice // service key -> slice name -> slice
	owner         map[string]string                      // "namespace/slice" -> service key
	sliceWarnings map[string][]Warning                   // "namespace/slice" -> warnings
	dirty         map[string]struct{}
	allDirty      bool
	snap          *Snapshot
	subs          subscribers // see Subscribe
}

type trackedService struct {
	ports    []*ServicePort // templates without endpoints; nil when skipped
	warnings []Warning
}

// NewTracker returns an empty Tracker.
func NewTracker(opts Options) *Tracker {
	if opts.IPFamily == "" {
		opts.IPFamily = v1.IPv4Protocol
	}
	return &Tracker{
		opts:          opts,
		filter:        filter{proxyName: opts.ProxyName},
		services:      map[string]*trackedService{},
		slices:        map[string]map[string]*endpoints.Slice{},
		owner:         map[string]string{},
		sliceWarnings: map[string][]Warning{},
		dirty:         map[string]struct{}{},
		snap:          &Snapshot{node: topology.Node{Name: opts.NodeName}, family: opts.IPFamily},
	}
}

func (t *Tracker) markDirty(key string) {
	t.dirty[key] = struct{}{}
	t.subs.notify()
}

// OnServiceAdd records a new Service.
func (t *Tracker) OnServiceAdd(svc *v1.Service) { t.OnServiceUpdate(nil, svc) }

// OnServiceUpdate records a changed Service; old may be nil.
func (t *Tracker) OnServiceUpdate(old, svc *v1.Service) {
	if svc == nil {
		t.OnServiceDelete(old)
		return
	}
	key := svc.Namespace + "/" + svc.Name
	var ts *trackedService
	if t.filter.handlesService(svc) {
		ports, warnings := servicePorts(svc, t.opts.IPFamily)
		ts = &trackedService{ports: ports, warnings: warnings}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.services[key]; ok && ts != nil && sameTemplates(old, ts) {
		return
	}
	if ts == nil {
		if _, ok := t.services[key]; !ok {
			return
		}
		delete(t.services, key)
	} else {
		t.services[key] = ts
	}
	t.markDirty(key)
}

// OnServiceDelete forgets a Service.
func (t *Tracker) OnServiceDelete(svc *v1.Service) {
	if svc == nil {
		return
	}
	key := svc.Namespace + "/" + svc.Name
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.services[key]; ok {
		delete(t.services, key)
		t.markDirty(key)
	}
}

// OnEndpointSliceAdd records a new EndpointSlice.
func (t *Tracker) OnEndpointSliceAdd(es *discoveryv1.EndpointSlice) {
	t.OnEndpointSliceUpdate(nil, es)
}

// OnEndpointSliceUpdate records a changed EndpointSlice; old may be nil.
// Slices labelled service.kubernetes.io/headless are ignored, as kube-proxy
// ignores them.
func (t *Tracker) OnEndpointSliceUpdate(old, es *discoveryv1.EndpointSlice) {
	if es == nil {
		t.OnEndpointSliceDelete(old)
		return
	}
	var parsed *endpoints.Slice
	var warnings []Warning
	if _, headless := es.Labels[LabelHeadless]; !headless {
		parsed, warnings = endpoints.ParseSlice(es, t.opts.IPFamily)
	}
	sliceKey := es.Namespace + "/" + es.Name
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(warnings) > 0 {
		t.sliceWarnings[sliceKey] = warnings
	} else {
		delete(t.sliceWarnings, sliceKey)
	}
	t.putSlice(sliceKey, parsed)
}

// OnEndpointSliceDelete forgets an EndpointSlice.
func (t *Tracker) OnEndpointSliceDelete(es *discoveryv1.EndpointSlice) {
	if es == nil {
		return
	}
	sliceKey := es.Namespace + "/" + es.Name
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.sliceWarnings, sliceKey)
	t.putSlice(sliceKey, nil)
}

// putSlice files a parsed slice (nil = none) under its service, removing it
// from the service it was filed under before if its label changed.
func (t *Tracker) putSlice(sliceKey string, s *endpoints.Slice) {
	newOwner := ""
	if s != nil {
		newOwner = s.Namespace + "/" + s.Service
	}
	if oldOwner, ok := t.owner[sliceKey]; ok {
		old := t.slices[oldOwner][sliceName(sliceKey)]
		if oldOwner == newOwner && old.Equal(s) {
			return
		}
		delete(t.slices[oldOwner], sliceName(sliceKey))
		if len(t.slices[oldOwner]) == 0 {
			delete(t.slices, oldOwner)
		}
		delete(t.owner, sliceKey)
		t.markDirty(oldOwner)
	}
	if s == nil {
		return
	}
	m := t.slices[newOwner]
	if m == nil {
		m = map[string]*endpoints.Slice{}
		t.slices[newOwner] = m
	}
	m[s.Name] = s
	t.owner[sliceKey] = newOwner
	t.markDirty(newOwner)
}

func sliceName(sliceKey string) string {
	_, name, _ := strings.Cut(sliceKey, "/")
	return name
}

// OnNodeAdd records the tracker's Node (other nodes are ignored): its
// topology.kubernetes.io/zone label is the zone used for zone hints.
func (t *Tracker) OnNodeAdd(node *v1.Node) { t.OnNodeUpdate(nil, node) }

// OnNodeUpdate records a changed Node.
func (t *Tracker) OnNodeUpdate(old, node *v1.Node) {
	if node == nil {
		t.OnNodeDelete(old)
		return
	}
	if t.opts.NodeName == "" || node.Name != t.opts.NodeName {
		return
	}
	t.setZone(node.Labels[v1.LabelTopologyZone])
}

// OnNodeDelete forgets the tracker's Node: no zone until it is seen again.
func (t *Tracker) OnNodeDelete(node *v1.Node) {
	if node == nil || t.opts.NodeName == "" || node.Name != t.opts.NodeName {
		return
	}
	t.setZone("")
}

func (t *Tracker) setZone(zone string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if zone == t.zone {
		return
	}
	t.zone = zone
	t.allDirty = true
	t.subs.notify()
}

// Snapshot returns the current snapshot. When nothing changed since the last
// call it returns the same *Snapshot; otherwise a new one whose Version is
// one higher, sharing every unchanged service with its predecessor.
func (t *Tracker) Snapshot() *Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.dirty) == 0 && !t.allDirty {
		return t.snap
	}
	prev := t.snap
	node := topology.Node{Name: t.opts.NodeName, Zone: t.zone}
	root, ports := prev.root, prev.ports
	update := func(key string) {
		old := trieGet(root, key)
		next := t.resolve(key, node)
		if old == nil && next == nil || old != nil && next != nil && sameEntry(old, next) {
			return
		}
		if old != nil {
			ports -= len(old.ports)
		}
		if next != nil {
			ports += len(next.ports)
		}
		root = trieSet(root, key, next)
	}
	if t.allDirty {
		keys := make(map[string]struct{}, len(t.services)+len(t.dirty))
		trieWalk(root, 0, func(e *entry) { keys[e.key] = struct{}{} })
		for k := range t.services {
			keys[k] = struct{}{}
		}
		for k := range keys {
			update(k)
		}
	} else {
		for k := range t.dirty {
			update(k)
		}
	}
	// A fresh map, not clear(): a cleared map keeps its capacity, and
	// ranging over it costs O(capacity) after a full build dirtied everything.
	t.dirty = map[string]struct{}{}
	t.allDirty = false
	if root == prev.root && node == prev.node {
		return prev
	}
	t.snap = &Snapshot{version: prev.version + 1, node: node, family: t.opts.IPFamily, root: root, ports: ports}
	return t.snap
}

// resolve computes one service's entry from its templates and slices.
func (t *Tracker) resolve(key string, node topology.Node) *entry {
	ts := t.services[key]
	if ts == nil || len(ts.ports) == 0 {
		return nil
	}
	var sl []*endpoints.Slice
	if m := t.slices[key]; len(m) > 0 {
		sl = make([]*endpoints.Slice, 0, len(m))
		for _, s := range m {
			sl = append(sl, s)
		}
	}
	merged := endpoints.Merge(sl, node.Name)
	e := &entry{key: key, ports: make([]*ServicePort, len(ts.ports))}
	for i, tmpl := range ts.ports {
		p := *tmpl
		key := endpoints.PortKey{Name: p.Name.Port, Protocol: p.Protocol}
		if j := slices.IndexFunc(merged, func(pe endpoints.PortEndpoints) bool { return pe.PortKey == key }); j >= 0 {
			p.Endpoints = merged[j].Endpoints
		}
		p.Topology = topology.Categorize(p.Endpoints, p.Policy(), node)
		e.ports[i] = &p
	}
	return e
}

func sameEntry(a, b *entry) bool {
	return slices.EqualFunc(a.ports, b.ports, (*ServicePort).Equal)
}

func sameTemplates(a, b *trackedService) bool {
	return slices.EqualFunc(a.ports, b.ports, func(x, y *ServicePort) bool { return x.sameService(y) }) &&
		slices.Equal(a.warnings, b.warnings)
}

// Warnings returns the warnings of the objects currently tracked, sorted by
// object then message: values that were skipped or corrected, and objects
// that were ignored as a whole.
func (t *Tracker) Warnings() []Warning {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Warning
	for _, ts := range t.services {
		out = append(out, ts.warnings...)
	}
	for _, ws := range t.sliceWarnings {
		out = append(out, ws...)
	}
	slices.SortFunc(out, func(a, b Warning) int {
		if c := strings.Compare(a.Object, b.Object); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	return out
}
