package servicemap

import (
	"cmp"
	"fmt"
	"net/netip"
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
	// ServiceCIDRs are service ranges configured statically (as kube-proxy's
	// --service-cluster-ip-range); the snapshot's ServiceCIDRs are these
	// and those of the ServiceCIDR objects the Tracker is given, of its
	// family.
	ServiceCIDRs []netip.Prefix
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
	merged        map[string][]endpoints.PortEndpoints   // service key -> its slices merged, until they change
	owner         map[string]string                      // "namespace/slice" -> service key
	sliceWarnings map[string][]Warning                   // "namespace/slice" -> warnings
	dirty         map[string]struct{}
	allDirty      bool
	snap          *Snapshot
	subs          subscribers // see Subscribe
	owners        owners      // who owns each frontend (see claim)
	nodeAddrs     []netip.Addr
	nodeEligible  bool // see NodeEligible
	cidrs         serviceCIDRs
	counts        ChangeCounts
	triggers      []trigger // of EndpointSlice changes, oldest first
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
		merged:        map[string][]endpoints.PortEndpoints{},
		owner:         map[string]string{},
		sliceWarnings: map[string][]Warning{},
		dirty:         map[string]struct{}{},
		snap:          &Snapshot{node: topology.Node{Name: opts.NodeName}, family: opts.IPFamily, frontends: newFrontendMap()},
		owners:        newOwners(),
		cidrs:         newServiceCIDRs(opts.IPFamily, opts.ServiceCIDRs),
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
	var claims map[FrontendKey][]claim
	if t.filter.handlesService(svc) {
		ports, warnings := servicePorts(svc, t.opts.IPFamily)
		ts = &trackedService{ports: ports, warnings: warnings}
		claims = claimsOf(key, ports, svc.CreationTimestamp.Time)
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
		delete(t.merged, key)
	} else {
		t.services[key] = ts
	}
	t.claim(key, claims)
	t.markDirty(key)
	t.counts.Services++
}

// claim records the frontends Service key claims (nil: none), and marks
// dirty the other Services that won or lost one by it.
func (t *Tracker) claim(key string, claims map[FrontendKey][]claim) {
	for _, other := range t.owners.set(key, claims) {
		t.dirty[other] = struct{}{}
	}
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
		delete(t.merged, key)
		t.claim(key, nil)
		t.markDirty(key)
		t.counts.Services++
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
	if t.putSlice(sliceKey, parsed) {
		t.counts.EndpointSlices++
		t.noteTrigger(es)
	}
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
	if t.putSlice(sliceKey, nil) {
		t.counts.EndpointSlices++
	}
}

// putSlice files a parsed slice (nil = none) under its service, removing it
// from the service it was filed under before if its label changed. It
// reports whether anything changed.
func (t *Tracker) putSlice(sliceKey string, s *endpoints.Slice) (changed bool) {
	newOwner := ""
	if s != nil {
		newOwner = s.Namespace + "/" + s.Service
	}
	if oldOwner, ok := t.owner[sliceKey]; ok {
		old := t.slices[oldOwner][sliceName(sliceKey)]
		if oldOwner == newOwner && old.Equal(s) {
			return false
		}
		delete(t.slices[oldOwner], sliceName(sliceKey))
		if len(t.slices[oldOwner]) == 0 {
			delete(t.slices, oldOwner)
		}
		delete(t.owner, sliceKey)
		delete(t.merged, oldOwner)
		t.markDirty(oldOwner)
		changed = true
	}
	if s == nil {
		return changed
	}
	m := t.slices[newOwner]
	if m == nil {
		m = map[string]*endpoints.Slice{}
		t.slices[newOwner] = m
	}
	m[s.Name] = s
	t.owner[sliceKey] = newOwner
	delete(t.merged, newOwner)
	t.markDirty(newOwner)
	return true
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
	var addrs []netip.Addr
	for _, a := range node.Status.Addresses {
		if ip, ok := endpoints.ParseAddr(a.Address); ok && (a.Type == v1.NodeInternalIP || a.Type == v1.NodeExternalIP) {
			addrs = append(addrs, ip)
		}
	}
	t.mu.Lock()
	t.nodeAddrs = addrs
	t.nodeEligible = eligible(node)
	t.mu.Unlock()
	t.setZone(node.Labels[v1.LabelTopologyZone])
}

// ToBeDeletedTaint is the taint the cluster autoscaler puts on a node it is
// about to delete.
const ToBeDeletedTaint = "ToBeDeletedByClusterAutoscaler"

// eligible is kube-proxy's node eligibility: not being deleted, not tainted
// for deletion.
func eligible(node *v1.Node) bool {
	if !node.DeletionTimestamp.IsZero() {
		return false
	}
	return !slices.ContainsFunc(node.Spec.Taints, func(t v1.Taint) bool { return t.Key == ToBeDeletedTaint })
}

// NodeEligible reports whether the tracker's Node, as last seen, may take
// load-balancer traffic, as kube-proxy's /healthz judges it: the Node has
// been seen, is not being deleted and has no ToBeDeletedTaint. A load
// balancer that probes /healthz then drains the node before it goes away.
// It is false until the Node is seen (and after it is deleted), so pass it
// to backends.RunnerOptions.NodeEligible only when a Node informer feeds
// the Tracker. It does not change the snapshot.
func (t *Tracker) NodeEligible() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nodeEligible
}

// OnNodeDelete forgets the tracker's Node: no zone until it is seen again.
func (t *Tracker) OnNodeDelete(node *v1.Node) {
	if node == nil || t.opts.NodeName == "" || node.Name != t.opts.NodeName {
		return
	}
	t.mu.Lock()
	t.nodeAddrs = nil
	t.nodeEligible = false
	t.mu.Unlock()
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
	if len(t.dirty) == 0 && !t.allDirty && !t.cidrs.dirty {
		return t.snap
	}
	prev := t.snap
	node := topology.Node{Name: t.opts.NodeName, Zone: t.zone}
	root, ports, fronts := prev.root, prev.ports, prev.frontends
	update := func(key string) {
		old := trieGet(root, key)
		next := t.resolve(key, node, old)
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
		fronts = reindex(fronts, old, next)
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
	cidrs := t.cidrs.take(prev.serviceCIDRs)
	if root == prev.root && node == prev.node && slices.Equal(cidrs, prev.serviceCIDRs) {
		return prev
	}
	t.snap = &Snapshot{version: prev.version + 1, node: node, family: t.opts.IPFamily, root: root, ports: ports,
		frontends: fronts, serviceCIDRs: cidrs}
	return t.snap
}

// resolve computes one service's entry from its templates and slices. A
// port equal to its version in old (the entry it replaces, or nil) keeps
// old's pointer, so that what did not change costs nothing downstream.
func (t *Tracker) resolve(key string, node topology.Node, old *entry) *entry {
	ts := t.services[key]
	if ts == nil || len(ts.ports) == 0 {
		return nil
	}
	// A Service's own changes (and topology's) leave its endpoints as they
	// were: they are merged again only when its slices change.
	merged, ok := t.merged[key]
	if !ok {
		var sl []*endpoints.Slice
		if m := t.slices[key]; len(m) > 0 {
			sl = make([]*endpoints.Slice, 0, len(m))
			for _, s := range m {
				sl = append(sl, s)
			}
		}
		merged = endpoints.Merge(sl, node.Name)
		t.merged[key] = merged
	}
	e := &entry{key: key, ports: make([]*ServicePort, 0, len(ts.ports))}
	j := 0 // ts.ports and old.ports are both sorted by name
	for _, tmpl := range ts.ports {
		p, ok := t.owned(key, tmpl)
		if !ok {
			continue // its cluster IP is another Service's
		}
		pk := endpoints.PortKey{Name: p.Name.Port, Protocol: p.Protocol}
		// Merge sorts by port name, then protocol.
		if j, found := slices.BinarySearchFunc(merged, pk, func(pe endpoints.PortEndpoints, k endpoints.PortKey) int {
			return cmp.Or(strings.Compare(pe.Name, k.Name), strings.Compare(string(pe.Protocol), string(k.Protocol)))
		}); found {
			p.Endpoints = merged[j].Endpoints
		}
		p.Topology = topology.Categorize(p.Endpoints, p.Policy(), node)
		if prev := previous(old, &j, p.Name); prev != nil && prev.Equal(&p) {
			e.ports = append(e.ports, prev)
			continue
		}
		e.ports = append(e.ports, &p)
	}
	if len(e.ports) == 0 {
		return nil
	}
	return e
}

// previous returns old's port named name, advancing *j through old's
// ports (sorted by name) as the caller walks names in order; nil if none.
func previous(old *entry, j *int, name ServicePortName) *ServicePort {
	if old == nil {
		return nil
	}
	for *j < len(old.ports) && old.ports[*j].Name.Compare(name) < 0 {
		*j++
	}
	if *j < len(old.ports) && old.ports[*j].Name == name {
		return old.ports[*j]
	}
	return nil
}

// owned returns a copy of port template tmpl of Service key without the
// frontends other Services own, and false when it does not own its cluster
// IP (the port is then not programmed at all).
func (t *Tracker) owned(key string, tmpl *ServicePort) (ServicePort, bool) {
	p := *tmpl
	own := func(k FrontendKey, kind FrontendKind) bool { return t.owners.owns(k, key, p.Name.Port, kind) }
	if !own(FrontendKey{p.Protocol, netip.AddrPortFrom(p.ClusterIP, p.Port)}, FrontendClusterIP) {
		return p, false
	}
	keep := func(addrs []netip.Addr, kind FrontendKind) []netip.Addr {
		for i, a := range addrs {
			if !own(FrontendKey{p.Protocol, netip.AddrPortFrom(a, p.Port)}, kind) {
				out := slices.Clone(addrs[:i])
				for _, b := range addrs[i+1:] {
					if own(FrontendKey{p.Protocol, netip.AddrPortFrom(b, p.Port)}, kind) {
						out = append(out, b)
					}
				}
				return out
			}
		}
		return addrs
	}
	p.ExternalIPs = keep(p.ExternalIPs, FrontendExternalIP)
	p.LoadBalancerIPs = keep(p.LoadBalancerIPs, FrontendLoadBalancerIP)
	if p.NodePort != 0 && !own(nodePortKey(p.Protocol, p.NodePort), FrontendNodePort) {
		p.NodePort = 0
	}
	return p, true
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
	out = append(out, t.owners.conflicts()...)
	out = append(out, t.cidrs.warnings...)
	// An external or load-balancer IP that is one of the node's own
	// addresses takes that address's port from the node itself.
	for key, ts := range t.services {
		for _, p := range ts.ports {
			for _, a := range slices.Concat(p.ExternalIPs, p.LoadBalancerIPs) {
				if slices.Contains(t.nodeAddrs, a) {
					out = append(out, Warning{Object: "Service " + key, Reason: ReasonNodeAddress,
						Message: fmt.Sprintf("port %s: %s is an address of node %s: the Service takes port %d/%s on it", portLabel(p.Name.Port), a, t.opts.NodeName, p.Port, p.Protocol)})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Warning) int {
		if c := strings.Compare(a.Object, b.Object); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	return out
}
