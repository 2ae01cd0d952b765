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
	for _, p := range ports {
		frontendsOf(p, func(k FrontendKey, kind FrontendKind) {
			out[k] = append(out[k], claim{service: key, port: p.Name.Port, kind: kind, created: created})
		})
	}
	return out
}

// set replaces the claims of Service key with cs (nil: none). It returns
// the other Services whose ownership of a frontend changed: their snapshot
// entries must be resolved again.
func (o *owners) set(key string, cs map[FrontendKey][]claim) []string {
	type owner struct{ service, port string }
	ownerOf := func(k FrontendKey) owner {
		if c := o.claims[k]; len(c) > 0 {
			return owner{c[0].service, c[0].port}
		}
		return owner{}
	}
	before := make(map[FrontendKey]owner, len(o.of[key])+len(cs))
	for _, k := range o.of[key] {
		before[k] = ownerOf(k)
	}
	for k := range cs {
		if _, ok := before[k]; !ok {
			before[k] = ownerOf(k)
		}
	}
	for _, k := range o.of[key] {
		rest := slices.DeleteFunc(slices.Clone(o.claims[k]), func(c claim) bool { return c.service == key })
		if len(rest) == 0 {
			delete(o.claims, k)
		} else {
			o.claims[k] = rest
		}
	}
	delete(o.of, key)
	if len(cs) > 0 {
		keys := make([]FrontendKey, 0, len(cs))
		for k, claims := range cs {
			merged := append(slices.Clone(o.claims[k]), claims...)
			slices.SortFunc(merged, compareClaims)
			o.claims[k] = merged
			keys = append(keys, k)
		}
		o.of[key] = keys
	}
	var changed []string
	for k, b := range before {
		if a := ownerOf(k); a != b {
			for _, s := range []string{b.service, a.service} {
				if s != "" && s != key && !slices.Contains(changed, s) {
					changed = append(changed, s)
				}
			}
		}
	}
	return changed
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
			what := fmt.Sprintf("%s %s", c.kind, k)
			why := "the older Service keeps it"
			switch {
			case win.class() < c.class():
				why = "a cluster IP always wins"
			case win.service == c.service && win.port == c.port:
				why = "the port's own"
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
