//go:build !linux

package main

import (
	"fmt"
	"os"
)

// runEpollRelay needs Linux's epoll; elsewhere the relay-epoll-uds column
// shows that it failed to start.
func runEpollRelay(string) int {
	fmt.Fprintln(os.Stderr, "relay-epoll: needs Linux")
	return 1
}
