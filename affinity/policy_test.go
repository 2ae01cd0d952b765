package affinity

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// makeService returns a Service ns/name with the given mutations applied.
func makeService(ns, name string, mutate ...func(*v1.Service)) *v1.Service {
	svc := &v1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, m := range mutate {
		m(svc)
	}
	return svc
}

func clientIP(svc *v1.Service) { svc.Spec.SessionAffinity = v1.ServiceAffinityClientIP }

func withTimeout(secs int32) func(*v1.Service) {
	return func(svc *v1.Service) {
		svc.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{
			ClientIP: &v1.ClientIPConfig{TimeoutSeconds: &secs},
		}
	}
}

func TestFromService(t *testing.T) {
	type result struct {
		Policy   Policy
		Warnings []string
	}
	tests := []struct {
		name string
		svc  *v1.Service
		want result
	}{{
		name: "nil service",
		svc:  nil,
		want: result{},
	}, {
		name: "empty means none",
		svc:  makeService("ns", "web"),
		want: result{},
	}, {
		name: "None ignores a config",
		svc: makeService("ns", "web", withTimeout(60), func(s *v1.Service) {
			s.Spec.SessionAffinity = v1.ServiceAffinityNone
		}),
		want: result{},
	}, {
		name: "ClientIP with timeout",
		svc:  makeService("ns", "web", clientIP, withTimeout(300)),
		want: result{Policy: Policy{ClientIP: true, Seconds: 300}},
	}, {
		name: "ClientIP at lower bound",
		svc:  makeService("ns", "web", clientIP, withTimeout(1)),
		want: result{Policy: Policy{ClientIP: true, Seconds: 1}},
	}, {
		name: "ClientIP at upper bound",
		svc:  makeService("ns", "web", clientIP, withTimeout(MaxTimeoutSeconds)),
		want: result{Policy: Policy{ClientIP: true, Seconds: MaxTimeoutSeconds}},
	}, {
		name: "missing config defaults",
		svc:  makeService("ns", "web", clientIP),
		want: result{
			Policy:   Policy{ClientIP: true, Seconds: DefaultTimeoutSeconds},
			Warnings: []string{"service ns/web: sessionAffinityConfig missing; using default 10800s"},
		},
	}, {
		name: "missing clientIP defaults",
		svc: makeService("ns", "web", clientIP, func(s *v1.Service) {
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{}
		}),
		want: result{
			Policy:   Policy{ClientIP: true, Seconds: DefaultTimeoutSeconds},
			Warnings: []string{"service ns/web: sessionAffinityConfig.clientIP missing; using default 10800s"},
		},
	}, {
		name: "missing timeoutSeconds defaults",
		svc: makeService("ns", "web", clientIP, func(s *v1.Service) {
			s.Spec.SessionAffinityConfig = &v1.SessionAffinityConfig{ClientIP: &v1.ClientIPConfig{}}
		}),
		want: result{
			Policy:   Policy{ClientIP: true, Seconds: DefaultTimeoutSeconds},
			Warnings: []string{"service ns/web: sessionAffinityConfig.clientIP.timeoutSeconds missing; using default 10800s"},
		},
	}, {
		name: "zero clamps up",
		svc:  makeService("ns", "web", clientIP, withTimeout(0)),
		want: result{
			Policy:   Policy{ClientIP: true, Seconds: 1},
			Warnings: []string{"service ns/web: sessionAffinityConfig.clientIP.timeoutSeconds 0 out of range [1, 86400]; using 1s"},
		},
	}, {
		name: "negative clamps up",
		svc:  makeService("ns", "web", clientIP, withTimeout(math.MinInt32)),
		want: result{
			Policy:   Policy{ClientIP: true, Seconds: 1},
			Warnings: []string{"service ns/web: sessionAffinityConfig.clientIP.timeoutSeconds -2147483648 out of range [1, 86400]; using 1s"},
		},
	}, {
		name: "too long clamps down",
		svc:  makeService("ns", "web", clientIP, withTimeout(MaxTimeoutSeconds+1)),
		want: result{
			Policy:   Policy{ClientIP: true, Seconds: MaxTimeoutSeconds},
			Warnings: []string{"service ns/web: sessionAffinityConfig.clientIP.timeoutSeconds 86401 out of range [1, 86400]; using 86400s"},
		},
	}, {
		name: "unknown value means none",
		svc:  makeService("ns", "web", withTimeout(60), func(s *v1.Service) { s.Spec.SessionAffinity = "Cookie" }),
		want: result{Warnings: []string{`service ns/web: unknown sessionAffinity "Cookie"; using None`}},
	}, {
		name: "case matters",
		svc:  makeService("ns", "web", func(s *v1.Service) { s.Spec.SessionAffinity = "clientip" }),
		want: result{Warnings: []string{`service ns/web: unknown sessionAffinity "clientip"; using None`}},
	}, {
		name: "no namespace",
		svc:  makeService("", "web", clientIP),
		want: result{
			Policy:   Policy{ClientIP: true, Seconds: DefaultTimeoutSeconds},
			Warnings: []string{"service web: sessionAffinityConfig missing; using default 10800s"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got result
			got.Policy, got.Warnings = FromService(tt.svc)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FromService() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPolicyFormat(t *testing.T) {
	type result struct {
		Seconds int
		String  string
	}
	tests := []struct {
		policy Policy
		want   result
	}{
		{Policy{}, result{0, "None"}},
		{Policy{Seconds: 60}, result{0, "None"}}, // a timeout means nothing without ClientIP
		{Policy{ClientIP: true, Seconds: DefaultTimeoutSeconds}, result{10800, "ClientIP(10800s)"}},
		{Policy{ClientIP: true, Seconds: -5}, result{0, "ClientIP(0s)"}}, // not from FromService
		{Policy{ClientIP: true}, result{0, "ClientIP(0s)"}},
	}
	for _, tt := range tests {
		got := result{tt.policy.TimeoutSeconds(), tt.policy.String()}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%#v: mismatch (-want +got):\n%s", tt.policy, diff)
		}
	}
}
