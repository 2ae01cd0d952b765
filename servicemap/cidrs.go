package servicemap

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/lbkit/lbkit/endpoints"
	"github.com/lbkit/lbkit/internal/netprefix"
)

// serviceCIDRs tracks the service ranges of a Tracker's family: the static
// ones of Options and those of ServiceCIDR objects, counted per object, so
// that deleting one object never removes a range another still lists
// (kube-proxy keeps one set of strings, where two objects naming one range
// lose it when either goes).
type serviceCIDRs struct {
	family   v1.IPFamily
	static   []netip.Prefix
	objects  map[string][]netip.Prefix
	warnings []Warning
	dirty    bool
}

func newServiceCIDRs(family v1.IPFamily, static []netip.Prefix) serviceCIDRs {
	s := serviceCIDRs{family: family, objects: map[string][]netip.Prefix{}, dirty: len(static) > 0}
	for _, p := range static {
		if p.IsValid() && sameFamily(p.Addr(), family) {
			s.static = append(s.static, p.Masked())
		}
	}
	return s
}

// set records the ranges of object name (nil: deleted); it reports whether
// anything changed.
func (s *serviceCIDRs) set(name string, cidrs []netip.Prefix) bool {
	if old, ok := s.objects[name]; ok && slices.Equal(old, cidrs) || !ok && cidrs == nil {
		return false
	}
	if cidrs == nil {
		delete(s.objects, name)
	} else {
		s.objects[name] = cidrs
	}
	s.dirty = true
	return true
}

// take returns the union of every range, sorted and without one inside
// another, or prev when nothing changed since the last take.
func (s *serviceCIDRs) take(prev []netip.Prefix) []netip.Prefix {
	if !s.dirty {
		return prev
	}
	s.dirty = false
	all := slices.Clone(s.static)
	for _, ps := range s.objects {
		all = append(all, ps...)
	}
	slices.SortFunc(all, netprefix.Compare)
	out := all[:0]
	for _, p := range all {
		if n := len(out); n > 0 && out[n-1].Overlaps(p) {
			continue
		}
		out = append(out, p)
	}
	if slices.Equal(out, prev) {
		return prev
	}
	return slices.Clip(out)
}

// parseServiceCIDR reads a ServiceCIDR object's ranges of family.
func parseServiceCIDR(sc *networkingv1.ServiceCIDR, family v1.IPFamily) ([]netip.Prefix, []Warning) {
	var out []netip.Prefix
	var warnings []Warning
	for _, c := range sc.Spec.CIDRs {
		p, ok := endpoints.ParsePrefix(strings.TrimSpace(c))
		switch {
		case !ok:
			warnings = append(warnings, Warning{Object: "ServiceCIDR " + sc.Name, Reason: ReasonBadSourceRange,
				Message: fmt.Sprintf("CIDR %q skipped: not a CIDR", c)})
		case sameFamily(p.Addr(), family):
			out = append(out, p.Masked())
		}
	}
	if out == nil {
		out = []netip.Prefix{}
	}
	return out, warnings
}

// OnServiceCIDRAdd records a networking.k8s.io/v1 ServiceCIDR.
func (t *Tracker) OnServiceCIDRAdd(sc *networkingv1.ServiceCIDR) { t.OnServiceCIDRUpdate(nil, sc) }

// OnServiceCIDRUpdate records a changed ServiceCIDR; old may be nil.
func (t *Tracker) OnServiceCIDRUpdate(old, sc *networkingv1.ServiceCIDR) {
	if sc == nil {
		t.OnServiceCIDRDelete(old)
		return
	}
	cidrs, warnings := parseServiceCIDR(sc, t.opts.IPFamily)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cidrs.warnings = slices.DeleteFunc(t.cidrs.warnings, func(w Warning) bool { return w.Object == "ServiceCIDR "+sc.Name })
	t.cidrs.warnings = append(t.cidrs.warnings, warnings...)
	if t.cidrs.set(sc.Name, cidrs) {
		t.subs.notify()
	}
}

// OnServiceCIDRDelete forgets a ServiceCIDR.
func (t *Tracker) OnServiceCIDRDelete(sc *networkingv1.ServiceCIDR) {
	if sc == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cidrs.warnings = slices.DeleteFunc(t.cidrs.warnings, func(w Warning) bool { return w.Object == "ServiceCIDR "+sc.Name })
	if t.cidrs.set(sc.Name, nil) {
		t.subs.notify()
	}
}
