//go:build !linux

package iptables

// Off Linux there is no kernel to ask: the programs are run (a fake, in
// tests).

func (b *Backend) kernelCanary(ipv6 bool) (intact, known bool) { return false, false }

func (b *Backend) canarySeen(ipv6 bool) {}

type tablesInfo struct{}
