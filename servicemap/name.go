package servicemap

import (
	"cmp"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// ServicePortName identifies one port of one Service. It is a small
// comparable value, usable as a map key; the zero value names nothing.
type ServicePortName struct {
	Namespace string
	Name      string
	// Port is the service port's name ("" for an unnamed port).
	Port     string
	Protocol v1.Protocol
}

// String returns "namespace/name:port", or "namespace/name" for an unnamed
// port, as kube-proxy prints it. The protocol is not part of the text: port
// names are unique within a Service.
func (n ServicePortName) String() string {
	s := n.Namespace + "/" + n.Name
	if n.Port != "" {
		s += ":" + n.Port
	}
	return s
}

// Compare orders names by namespace, name, port name and protocol.
func (n ServicePortName) Compare(o ServicePortName) int {
	return cmp.Or(
		strings.Compare(n.Namespace, o.Namespace),
		strings.Compare(n.Name, o.Name),
		strings.Compare(n.Port, o.Port),
		strings.Compare(string(n.Protocol), string(o.Protocol)),
	)
}

// ServiceName returns "namespace/name".
func (n ServicePortName) ServiceName() string { return n.Namespace + "/" + n.Name }
