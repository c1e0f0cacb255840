package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

// relayEnv, when set to a broker address, makes this program run as the byte
// relay instead of the bench: the bench re-executes itself with it so the
// relay is a process of its own.
const relayEnv = "MQTT_AUTHPROXY_BENCH_RELAY_UPSTREAM"

// runRelay is the relay child's main: it listens on a loopback port, prints
// the address on stdout, and copies bytes both ways between each client and
// its own connection to upstream (io.Copy, which uses splice(2) between two
// TCP sockets on Linux) — the floor for any user-space relay. It runs until
// killed.
func runRelay(upstream string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay: listen:", err)
		return 1
	}
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "relay: accept:", err)
			return 1
		}
		go relayConn(c, upstream)
	}
}

// relayConn pipes c to a new connection to upstream until both directions
// end, propagating half-closes.
func relayConn(c net.Conn, upstream string) {
	defer c.Close()
	up, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, c)
		closeWrite(up)
		close(done)
	}()
	_, _ = io.Copy(c, up)
	closeWrite(c)
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
