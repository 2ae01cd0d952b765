package affinity_test

import (
	"fmt"
	"net/netip"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbkit/lbkit/affinity"
)

func ExampleFromService() {
	timeout := int32(100000) // more than a day: the API server would reject it
	svc := &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: v1.ServiceSpec{
			SessionAffinity: v1.ServiceAffinityClientIP,
			SessionAffinityConfig: &v1.SessionAffinityConfig{
				ClientIP: &v1.ClientIPConfig{TimeoutSeconds: &timeout},
			},
		},
	}
	policy, warnings := affinity.FromService(svc)
	fmt.Println(policy)
	for _, w := range warnings {
		fmt.Println("warning:", w)
	}
	// Output:
	// ClientIP(86400s)
	// warning: service default/web: sessionAffinityConfig.clientIP.timeoutSeconds 100000 out of range [1, 86400]; using 86400s
}

func ExamplePolicy_String() {
	fmt.Println(affinity.Policy{})
	fmt.Println(affinity.Policy{ClientIP: true, Seconds: affinity.DefaultTimeoutSeconds})
	// Output:
	// None
	// ClientIP(10800s)
}

func ExampleTable() {
	policy := affinity.Policy{ClientIP: true, Seconds: 10}
	sticky := affinity.NewTable[netip.Addr, netip.AddrPort](affinity.Options{MaxEntries: 1000})

	client := netip.MustParseAddr("192.0.2.7")
	backend := netip.MustParseAddrPort("10.0.0.1:8080")
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	// First packet: no entry yet, so the picker chooses and records a backend.
	if _, ok := sticky.Lookup(client, start, policy.Timeout()); !ok {
		sticky.Set(client, backend, start)
	}
	// Each use restarts the timeout, so a client active every 8s stays put.
	for _, t := range []time.Duration{8 * time.Second, 16 * time.Second} {
		ep, ok := sticky.Lookup(client, start.Add(t), policy.Timeout())
		fmt.Println(t, ep, ok)
	}
	// After 11s of silence the entry has expired.
	_, ok := sticky.Lookup(client, start.Add(27*time.Second), policy.Timeout())
	fmt.Println("27s", ok, sticky.Len())

	// When a backend goes away, forget who was stuck to it.
	sticky.Set(client, backend, start.Add(30*time.Second))
	fmt.Println("removed", sticky.DeleteEndpoint(backend))
	// Output:
	// 8s 10.0.0.1:8080 true
	// 16s 10.0.0.1:8080 true
	// 27s false 0
	// removed 1
}
