// Package kubeproxy checks lbkit against kube-proxy's own code: random
// clusters (Services and EndpointSlices an API server accepts) are resolved
// by kube-proxy's change trackers and CategorizeEndpoints (k8s.io/kubernetes
// v1.37.2, pkg/proxy) and by lbkit's Tracker and PortPlan, and every
// service port must come out the same: its fields, its endpoints with their
// conditions, the endpoints each traffic policy uses, and what cluster-IP
// and external traffic meet.
//
// It is a module of its own, so the library's go.mod stays free of
// k8s.io/kubernetes; `go test ./...` at the repository root does not
// include it:
//
//	cd test/kubeproxy && go test ./...
//	cd test/kubeproxy && go test -fuzz FuzzAgainstKubeProxy .
package kubeproxy
