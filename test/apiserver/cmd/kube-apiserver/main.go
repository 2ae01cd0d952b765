// Command kube-apiserver is the Kubernetes API server, built from the
// k8s.io/kubernetes module at the version test/apiserver's go.mod names, so
// the integration tests run against a real one without the library's own
// go.mod depending on k8s.io/kubernetes.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
