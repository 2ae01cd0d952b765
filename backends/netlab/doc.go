// Package netlab builds a throwaway network of Linux network namespaces, a
// node, a client and pods joined by veth pairs and a bridge, and talks to
// it: servers in the pods that answer with their name and the client
// address they saw, dialers from the client or any namespace, UDP and TCP
// streams, commands run in the node. Data planes are tested by sending
// real packets through it (backendtest's conformance suite runs on it) and
// lbctl's demo shows a backend at work in one.
//
// Nothing sent in a Network leaves it: the node has no route out. Building
// one needs root, iproute2 and, by default, br_netfilter (see
// NetworkOptions). Off Linux every call fails.
//
// The package does not import testing: NewNetwork, Serve and ServeEcho
// take a TB, which *testing.T satisfies, and Open, ServePort and the
// dialers return errors for use outside tests.
package netlab
