// Package servicemaptest is lbkit's test kit, for the tests of lbkit and of
// the programs built on it: builders for Services, EndpointSlices and Nodes
// with the API server's defaults applied (a test states only what it cares
// about), EndpointSlices computed from Pods as the EndpointSlice controller
// would write them, and a Harness that drives a servicemap.Tracker from
// client-go informers over a fake clientset without the fake's race.
//
//	svc := servicemaptest.Service("ns", "web", "10.96.0.10",
//		[]v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)},
//		func(s *v1.Service) { s.Spec.Type = v1.ServiceTypeNodePort })
//	slices := servicemaptest.SlicesFromPods(svc, pods, servicemaptest.SliceOptions{})
//
// It does not import package testing: helpers return errors, so programs
// that are not tests may link it too.
package servicemaptest
