package main

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// sourceDialer dials from the loopback source address addr with the port
// left to connect(2) (IP_BIND_ADDRESS_NO_PORT), which then needs the
// four-tuple only to be unique, not the port.
func sourceDialer(addr net.IP) *net.Dialer {
	return &net.Dialer{
		Timeout:   connectTimeout,
		LocalAddr: &net.TCPAddr{IP: addr},
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			}); err != nil {
				return err
			}
			return serr
		},
	}
}
