package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// relayEnv, when set to a broker address, makes this program run as the byte
// relay instead of the bench: the bench re-executes itself with it so the
// relay is a process of its own.
const relayEnv = "MQTT_AUTHPROXY_BENCH_RELAY_UPSTREAM"

// relayEpollEnv, set beside relayEnv, makes the child the epoll relay.
const relayEpollEnv = "MQTT_AUTHPROXY_BENCH_RELAY_EPOLL"

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

// relayConn pipes c to a new connection to upstream (host:port or
// unix:PATH) until both directions end, propagating half-closes.
func relayConn(c net.Conn, upstream string) {
	defer c.Close()
	up, err := dialRelayUpstream(upstream)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay: dial upstream:", err)
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

// dialRelayUpstream dials the broker, retrying for up to 5 s while a Unix
// socket's accept queue is full (EAGAIN), as the proxy does.
func dialRelayUpstream(upstream string) (net.Conn, error) {
	network, addr := "tcp", upstream
	if path, ok := strings.CutPrefix(upstream, "unix:"); ok {
		network, addr = "unix", path
	}
	deadline := time.Now().Add(5 * time.Second)
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 10*time.Millisecond) {
		c, err := net.Dial(network, addr)
		if err == nil || !errors.Is(err, syscall.EAGAIN) || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(pause)
	}
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}
