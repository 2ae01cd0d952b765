package affinity

import (
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
)

const (
	// DefaultTimeoutSeconds is the stickiness timeout an API server fills in
	// when a ClientIP service does not set one (v1.DefaultClientIPServiceAffinitySeconds).
	DefaultTimeoutSeconds = 10800
	// MaxTimeoutSeconds is the largest timeout API validation accepts (one day).
	MaxTimeoutSeconds = 86400
)

// Policy is the session affinity of one service port. The zero value means
// no affinity. The timeout is kept as the API gives it, in whole seconds:
// every data plane programs seconds (nft set timeouts, IPVS persistence,
// iptables' recent match), so it is converted once, where a Duration is
// needed (Timeout).
type Policy struct {
	ClientIP bool // sessionAffinity: ClientIP
	Seconds  int  // stickiness timeout, 1 to MaxTimeoutSeconds; 0 when !ClientIP
}

// FromService returns the session affinity policy of svc and warnings about
// fields it had to default or correct. A nil svc has no affinity.
//
// Rules:
//   - "" and "None": no affinity.
//   - "ClientIP": affinity with spec.sessionAffinityConfig.clientIP.timeoutSeconds.
//     A missing timeout becomes DefaultTimeoutSeconds, with a warning: stored
//     objects are always defaulted, so its absence means the object did not
//     come through an API server.
//   - A timeout outside [1, MaxTimeoutSeconds] is clamped into it, with a warning.
//   - Any other value: no affinity, with a warning.
func FromService(svc *v1.Service) (Policy, []string) {
	if svc == nil {
		return Policy{}, nil
	}
	switch svc.Spec.SessionAffinity {
	case "", v1.ServiceAffinityNone:
		return Policy{}, nil
	case v1.ServiceAffinityClientIP:
	default:
		return Policy{}, []string{fmt.Sprintf("service %s: unknown sessionAffinity %q; using None",
			serviceName(svc), svc.Spec.SessionAffinity)}
	}

	secs, missing := clientIPTimeout(svc.Spec.SessionAffinityConfig)
	var warnings []string
	switch {
	case missing != "":
		secs = DefaultTimeoutSeconds
		warnings = append(warnings, fmt.Sprintf("service %s: %s missing; using default %ds",
			serviceName(svc), missing, secs))
	case secs < 1 || secs > MaxTimeoutSeconds:
		clamped := min(max(secs, 1), MaxTimeoutSeconds)
		warnings = append(warnings, fmt.Sprintf("service %s: sessionAffinityConfig.clientIP.timeoutSeconds %d out of range [1, %d]; using %ds",
			serviceName(svc), secs, MaxTimeoutSeconds, clamped))
		secs = clamped
	}
	return Policy{ClientIP: true, Seconds: int(secs)}, warnings
}

// clientIPTimeout returns the configured timeout, or the path of the first
// missing field when there is none.
func clientIPTimeout(cfg *v1.SessionAffinityConfig) (secs int64, missing string) {
	switch {
	case cfg == nil:
		return 0, "sessionAffinityConfig"
	case cfg.ClientIP == nil:
		return 0, "sessionAffinityConfig.clientIP"
	case cfg.ClientIP.TimeoutSeconds == nil:
		return 0, "sessionAffinityConfig.clientIP.timeoutSeconds"
	}
	return int64(*cfg.ClientIP.TimeoutSeconds), ""
}

func serviceName(svc *v1.Service) string {
	if svc.Namespace == "" {
		return svc.Name
	}
	return svc.Namespace + "/" + svc.Name
}

// TimeoutSeconds returns the timeout in seconds, or 0 without affinity.
func (p Policy) TimeoutSeconds() int {
	if !p.ClientIP || p.Seconds < 0 {
		return 0
	}
	return p.Seconds
}

// Timeout returns the timeout as a Duration, or 0 without affinity.
func (p Policy) Timeout() time.Duration { return time.Duration(p.TimeoutSeconds()) * time.Second }

// String returns "None" or "ClientIP(<seconds>s)", e.g. "ClientIP(10800s)".
func (p Policy) String() string {
	if !p.ClientIP {
		return "None"
	}
	return fmt.Sprintf("ClientIP(%ds)", p.TimeoutSeconds())
}
