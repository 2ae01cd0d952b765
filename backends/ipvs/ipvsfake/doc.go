// Package ipvsfake holds fakes of the kernel pieces the ipvs backend
// drives, so that code built on an ipvs.Backend can be tested without root
// and without a kernel that has IPVS.
//
// [IPVS] implements ipvs.Handle and [Host] implements ipvs.Host. Pass them
// in ipvs.Options (IPVS, Host), with a knftables.Fake as Options.NFT, and
// the Backend syncs against them as it would against the kernel.
//
// The fakes behave, they do not merely record: IPVS refuses what the
// kernel refuses, with the kernel's errno values (EEXIST for an object that
// exists, ESRCH for a missing virtual server, ENOENT for a missing real
// server or an unknown scheduler, EINVAL for an invalid one), and so does
// Host (ENODEV, EEXIST, EADDRNOTAVAIL). Both log every call that changes
// something, so a test can assert that a sync touched only what changed
// (TakeCalls), and count the listings (TakeListings: virtual servers, real
// servers, link addresses), so a test can also assert what a sync asked the
// kernel; both fail a chosen call on demand (FailNext). IPVS.Dump
// prints the table in the format of ipvs.Render, so a test can compare
// what a Backend programmed with what Render says it would.
//
// Both fakes are safe for concurrent use. The zero values are not usable:
// call NewIPVS and NewHost. They build on every OS, as the ipvs package's
// Spec and Render do; the Backend they are passed to is Linux-only.
package ipvsfake
