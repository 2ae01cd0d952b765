package servicemap

import (
	"fmt"
	"slices"
	"time"
)

// owners is a Tracker's index of the claims on frontends (see claim): who
// claims each frontend, best first, and what each Service claims.
type owners struct {
	claims map[FrontendKey][]claim
	of     map[string][]FrontendKey // Service key -> the keys it claims
}

func newOwners() owners {
	return owners{claims: map[FrontendKey][]claim{}, of: map[string][]FrontendKey{}}
}

// claimsOf lists the claims of a Service's port templates.
func claimsOf(key string, ports []*ServicePort, created time.Time) map[FrontendKey][]claim {
	out := make(map[FrontendKey][]claim, len(ports)*2)
	// One backing array for the common single claim per frontend; a
	// second claim on one frontend copies out of it (capacity one).
	backing := make([]claim, 0, len(ports)*2)
	for _, p := range ports {
		frontendsOf(p, func(k FrontendKey, kind FrontendKind) {
			c := claim{service: key, port: p.Name.Port, kind: kind, created: created}
			if cs, ok := out[k]; ok {
				out[k] = append(cs, c)
				return
			}
			if len(backing) == cap(backing) {
				backing = make([]claim, 0, 16)
			}
			backing = append(backing, c)
			out[k] = backing[len(backing)-1 : len(backing) : len(backing)]
		})
	}
	return out
}

// set replaces the claims of Service key with cs (nil: none). It returns
// the other Services whose ownership of a frontend changed: their snapshot
// entries must be resolved again. Frontends whose claims by key are as
// they were cost one lookup.
func (o *owners) set(key string, cs map[FrontendKey][]claim) []string {
	var changed []string
	note := func(k FrontendKey, before owner) {
		after := o.ownerOf(k)
		if after == before {
			return
		}
		for _, s := range []string{before.service, after.service} {
			if s != "" && s != key && !slices.Contains(changed, s) {
				changed = append(changed, s)
			}
		}
	}
	for _, k := range o.of[key] {
		if _, still := cs[k]; still {
			continue
		}
		before := o.ownerOf(k)
		rest := slices.DeleteFunc(slices.Clone(o.claims[k]), func(c claim) bool { return c.service == key })
		if len(rest) == 0 {
			delete(o.claims, k)
		} else {
			o.claims[k] = rest
		}
		note(k, before)
	}
	if len(cs) == 0 {
		delete(o.of, key)
		return changed
	}
	keys := make([]FrontendKey, 0, len(cs))
	for k, claims := range cs {
		keys = append(keys, k)
		cur := o.claims[k]
		if sameClaims(cur, key, claims) {
			continue
		}
		before := o.ownerOf(k)
		merged := slices.DeleteFunc(slices.Clone(cur), func(c claim) bool { return c.service == key })
		merged = append(merged, claims...)
		slices.SortFunc(merged, compareClaims)
		o.claims[k] = merged
		note(k, before)
	}
	o.of[key] = keys
	return changed
}

type owner struct{ service, port string }

func (o *owners) ownerOf(k FrontendKey) owner {
	if c := o.claims[k]; len(c) > 0 {
		return owner{c[0].service, c[0].port}
	}
	return owner{}
}

// sameClaims reports whether the claims of Service key in cur are want.
func sameClaims(cur []claim, key string, want []claim) bool {
	n := 0
	for _, c := range cur {
		if c.service != key {
			continue
		}
		if !slices.ContainsFunc(want, func(w claim) bool { return w.equal(c) }) {
			return false
		}
		n++
	}
	return n == len(want)
}

// owns reports whether the port named port of Service key owns k as a
// frontend of that kind (a Service naming its own cluster IP as an external
// IP owns the address as its cluster IP only).
func (o *owners) owns(k FrontendKey, key, port string, kind FrontendKind) bool {
	cs := o.claims[k]
	return len(cs) > 0 && cs[0].service == key && cs[0].port == port && cs[0].kind == kind
}

// conflicts returns a warning for every claim that lost its frontend,
// naming the owner.
func (o *owners) conflicts() []Warning {
	var out []Warning
	for k, cs := range o.claims {
		if len(cs) < 2 {
			continue
		}
		win := cs[0]
		for _, c := range cs[1:] {
			if c.service == win.service && c.port == win.port {
				continue // one port naming an address twice takes nothing from anyone
			}
			what := fmt.Sprintf("%s %s", c.kind, k)
			why := "the older Service keeps it"
			switch {
			case win.class() < c.class():
				why = "a cluster IP always wins"
			case win.service == c.service:
				why = "two ports of one Service"
			}
			consequence := "dropped"
			if c.kind == FrontendClusterIP {
				consequence = "port " + portLabel(c.port) + " dropped"
			}
			out = append(out, Warning{
				Object:  "Service " + c.service,
				Reason:  ReasonConflict,
				Message: fmt.Sprintf("%s %s: Service %s owns it as its %s (%s)", what, consequence, win.service, win.kind, why),
			})
		}
	}
	return out
}

func portLabel(p string) string {
	if p == "" {
		return `""`
	}
	return p
}
