package kubeproxy_test

import (
	"encoding/json"
	"strings"

	discoveryv1 "k8s.io/api/discovery/v1"
)

// describe prints a cluster as JSON, one object a line, for a failure
// report that can be turned into a table row.
func describe(c cluster) string {
	var b strings.Builder
	for _, svc := range c.services {
		j, _ := json.Marshal(struct {
			Name   string
			Spec   any
			Status any
			Annot  map[string]string `json:",omitempty"`
		}{svc.Name, svc.Spec, svc.Status, svc.Annotations})
		b.Write(j)
		b.WriteByte('\n')
	}
	for _, es := range c.slices {
		j, _ := json.Marshal(struct {
			Name        string
			Service     string
			AddressType string
			Ports       any
			Endpoints   any
		}{es.Name, es.Labels[discoveryv1.LabelServiceName], string(es.AddressType), es.Ports, es.Endpoints})
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}
