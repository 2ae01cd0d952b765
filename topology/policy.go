package topology

// Policy is what Categorize needs to know about a service port.
type Policy struct {
	// InternalLocal is internalTrafficPolicy: Local (traffic to the cluster IP
	// from this node only goes to endpoints on this node).
	InternalLocal bool
	// ExternalLocal is externalTrafficPolicy: Local for a NodePort or
	// LoadBalancer service (external traffic only goes to local endpoints).
	ExternalLocal bool
	// ExternallyAccessible is true when the port is reachable through
	// something other than its cluster IP: a node port, an external IP or a
	// load-balancer IP.
	ExternallyAccessible bool
}

// UsesClusterEndpoints reports whether the port ever sends traffic to
// endpoints chosen by the Cluster policy: when internal traffic is Cluster,
// or when the port accepts external traffic at all (even with an external
// policy of Local, traffic from pods and from the node itself to an external
// address short-circuits to cluster endpoints).
func (p Policy) UsesClusterEndpoints() bool {
	return !p.InternalLocal || p.ExternallyAccessible
}

// UsesLocalEndpoints reports whether the port ever sends traffic to endpoints
// chosen by the Local policy.
func (p Policy) UsesLocalEndpoints() bool {
	return p.InternalLocal || (p.ExternalLocal && p.ExternallyAccessible)
}
