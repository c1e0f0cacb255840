//go:build !linux

package main

import "net"

// sourceDialer dials from the loopback source address addr.
func sourceDialer(addr net.IP) *net.Dialer {
	return &net.Dialer{Timeout: connectTimeout, LocalAddr: &net.TCPAddr{IP: addr}}
}
