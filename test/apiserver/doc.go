// Package apiserver holds lbkit's integration tests against a real
// Kubernetes API server: etcd (Debian's etcd-server) and a kube-apiserver
// built from the k8s.io/kubernetes module by cmd/kube-apiserver, both on
// the loopback of a namespace network's node, with examples/nodeproxy
// programming nftables there from real client-go informers.
//
// It is a module of its own, so the library's go.mod stays free of
// k8s.io/kubernetes; `go test ./...` at the repository root does not
// include it. Run it as root:
//
//	cd test/apiserver && LBKIT_E2E=1 go test ./...
package apiserver
