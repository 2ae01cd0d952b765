// Package healthcheck serves the health-check node ports of LoadBalancer
// Services with externalTrafficPolicy Local, as kube-proxy serves them, so a
// cloud load balancer sends traffic only to nodes that have a local endpoint.
//
// A [Server] opens one HTTP listener per healthCheckNodePort of a snapshot
// (per bind address, when Options.Addresses is set) and answers every path
// with:
//
//	HTTP 200 when the service has a local ready endpoint and the proxy is
//	healthy, 503 otherwise; Content-Type application/json,
//	X-Content-Type-Options nosniff, X-Load-Balancing-Endpoint-Weight the
//	number of local endpoints, and a body such as
//	{"service":{"namespace":"ns","name":"svc"},"localEndpoints":1,"serviceProxyHealthy":true}
//
// localEndpoints counts, as kube-proxy does, the distinct IP addresses of the
// service's endpoints that are on this node and ready, over all its ports (a
// pod serving ports 80 and 443 is one endpoint). Terminating endpoints are
// not counted even when they still take traffic: the load balancer should
// stop choosing a node whose endpoints are going away.
//
// Sync is cheap when nothing changed; listeners stay open while their port
// is wanted, and only the answers change. Port numbers are unique per
// cluster (the API server allocates them), so a port claimed by two
// services in one snapshot is an error: the first by name keeps it.
//
// All methods are safe for concurrent use. A dual-stack node runs one
// Tracker per family but needs one Server: feed it the snapshots of one
// family.
package healthcheck
