package main

import (
	"io"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// FuzzLoadDocuments feeds arbitrary bytes to the manifest loader: it must
// return objects or an error, never panic, and whatever it loads must
// resolve without panicking either.
func FuzzLoadDocuments(f *testing.F) {
	f.Add(sampleYAML)
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n  spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}\n"))
	f.Add([]byte("---\n---\nkind: Node\napiVersion: v1\nmetadata: {name: n}\n"))
	f.Add([]byte("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s, labels: {kubernetes.io/service-name: a}}\naddressType: IPv4\nendpoints: [{addresses: ['010.1.2.3']}]\nports: [{port: 0}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &inputs{}
		if err := loadDocuments("fuzz.yaml", data, in); err != nil {
			return
		}
		res := resolveInputs(&resolveFlags{}, in, v1.IPv4Protocol)
		_ = toJSON(res)
		writeTable(io.Discard, res)
	})
}
