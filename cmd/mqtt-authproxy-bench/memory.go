package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// memoryDialers is how many connections the memory cell opens at once.
const memoryDialers = 64

// fdReserve is what a process keeps of RLIMIT_NOFILE for everything but the
// memory cell's connections (listeners, logs, the load generator's own).
const fdReserve = 1024

// memoryConns is how many idle connections the memory cell can open to a
// target holding fdsPerConn descriptors per connection: s.conns, unless the
// target or the bench itself would run out of file descriptors (the hard
// limit cannot be raised without CAP_SYS_RESOURCE).
func memoryConns(requested, fdsPerConn int, nofile uint64) int {
	room := (int(min(nofile, 1<<30)) - fdReserve) / fdsPerConn
	return max(min(requested, room), 1)
}

// memoryResult is the resident memory a target's process spends on idle
// connections.
type memoryResult struct {
	conns         int
	before, after int64   // VmRSS in KiB
	perConn       float64 // KiB per connection
}

// runMemory opens n idle MQTT connections to t (raw sockets, one
// CONNECT each — with a JWT for the proxy — and a CONNACK 0x00), waits
// s.settle, and reports the growth of VmRSS of t's process (the broker for
// direct) divided by the number of connections. The connections are then
// closed with DISCONNECT.
func runMemory(ctx context.Context, t *target, id *identity, s settings, n int) (memoryResult, error) {
	res := memoryResult{conns: n}
	pid := t.proc.pid()
	before, err := rssKiB(pid)
	if err != nil {
		return res, err
	}
	res.before = before
	conns := make([]net.Conn, n)
	defer closeIdle(conns)
	var next atomic.Int64
	var fail firstError
	var wg sync.WaitGroup
	for range memoryDialers {
		wg.Go(func() {
			for ctx.Err() == nil && fail.get() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(conns) {
					return
				}
				nc, err := net.DialTimeout("tcp", t.addr, connectTimeout)
				if err != nil {
					fail.set(fmt.Errorf("connection %d: dial: %w", i, err))
					return
				}
				conns[i] = nc
				if err := rawConnect(nc, connectPacket(fmt.Sprintf("bench-idle-%d", i), t.token(id, i), 600), connectTimeout); err != nil {
					fail.set(fmt.Errorf("connection %d: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
	if fail.get() != nil {
		return res, fail.get()
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	select {
	case <-time.After(s.settle):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	after, err := rssKiB(pid)
	if err != nil {
		return res, err
	}
	res.after = after
	res.perConn = float64(after-before) / float64(n)
	return res, nil
}

// closeIdle says DISCONNECT on every open connection and closes it.
func closeIdle(conns []net.Conn) {
	for _, nc := range conns {
		if nc != nil {
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(nc, disconnectPacket)
			_ = nc.Close()
		}
	}
}
