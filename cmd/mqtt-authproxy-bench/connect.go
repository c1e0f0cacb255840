package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// connectTimeout bounds one dial + CONNECT → CONNACK.
const connectTimeout = 10 * time.Second

// connectResult is the connection set-up rate of one target.
type connectResult struct {
	ok      int64
	failed  int64
	elapsed time.Duration
	cpu     time.Duration // CPU used by the hop meanwhile; 0 without a hop
	// Where the rest of the machine's time went meanwhile (the round's log
	// line): the broker's CPU, the bench's own (the clients) and the time
	// all processors were idle.
	brokerCPU, clientCPU, idle time.Duration
}

// add sums two rounds.
func (r connectResult) add(o connectResult) connectResult {
	return connectResult{r.ok + o.ok, r.failed + o.failed, r.elapsed + o.elapsed, r.cpu + o.cpu,
		r.brokerCPU + o.brokerCPU, r.clientCPU + o.clientCPU, r.idle + o.idle}
}

// perConnect divides d by the successful set-ups.
func (r connectResult) perConnect(d time.Duration) time.Duration {
	return d / time.Duration(max(r.ok, 1))
}

// rate is successful CONNECT → CONNACK per second.
func (r connectResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// cpuPerConnect is the hop's CPU time per successful connection set-up.
func (r connectResult) cpuPerConnect() time.Duration { return r.perConnect(r.cpu) }

// runConnect has s.connectors workers open connections to t for dur:
// each dials, sends CONNECT (with a JWT for the proxy, anonymous otherwise),
// waits for CONNACK 0x00, sends DISCONNECT and closes. The client id is
// unique per connection, so no session is taken over.
//
// token gives the n-th connection's token ("" for anonymous); false ends
// the worker (the fresh tokens ran out).
func runConnect(ctx context.Context, t *target, broker *process, s settings, dur time.Duration, token func(n int) (string, bool)) (connectResult, error) {
	var res connectResult
	var ok, failed atomic.Int64
	var fail firstError
	cpu0, err := hopCPU(t)
	if err != nil {
		return res, err
	}
	machine0 := readMachineTimes(broker)
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for w := range s.connectors {
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				tok, more := token(n)
				if !more {
					return
				}
				if err := connectOnce(sourceDialer(sourceAddr(w, n)), t.addr, connectPacket(fmt.Sprintf("bench-c%d-%d", w, n), tok, 30)); err != nil {
					failed.Add(1)
					fail.set(err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	res.ok, res.failed = ok.Load(), failed.Load()
	res.elapsed = time.Since(start)
	cpu1, err := hopCPU(t)
	if err != nil {
		return res, err
	}
	res.cpu = cpu1 - cpu0
	machine1 := readMachineTimes(broker)
	res.brokerCPU = machine1.broker - machine0.broker
	res.clientCPU = machine1.client - machine0.client
	res.idle = machine1.idle - machine0.idle
	if res.failed > 0 {
		return res, fmt.Errorf("%d of %d connections failed, first: %w", res.failed, res.ok+res.failed, fail.get())
	}
	if res.ok == 0 {
		return res, errors.New("no connection succeeded")
	}
	return res, nil
}

// sourceAddr is the loopback address worker w's n-th connection comes
// from (127.x.y.z: 250 a worker, from 127.1.0.0/16 up), as if the clients
// were on many hosts. From one address, connect(2) searches for a free
// port among the TIME_WAITs the earlier connections left (the client
// closes first after DISCONNECT); on 2026-11-29 that cost the bench's
// clients up to 45 µs per anonymous CONNECT straight to Mosquitto, and
// more the younger the TIME_WAITs, so the direct figure swung between
// 14,500 and 23,000/s with what had run in the minute before; through the
// proxy the clients' CPU per CONNECT did not move with it. The hops' own
// dials to Mosquitto over TCP still come from one address, as a sidecar's
// would.
func sourceAddr(w, n int) net.IP {
	return net.IPv4(127, byte(1+w>>8), byte(w), byte(1+n%250))
}

// connectOnce performs one connection set-up and a clean disconnect.
func connectOnce(d *net.Dialer, addr string, connect []byte) error {
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer nc.Close()
	if err := rawConnect(nc, connect, connectTimeout); err != nil {
		return err
	}
	_, _ = io.WriteString(nc, disconnectPacket)
	return nil
}

// machineTimes are cumulative CPU times of the broker and the bench, and
// the machine's idle time.
type machineTimes struct{ broker, client, idle time.Duration }

// readMachineTimes reads them; a figure it cannot read stays 0 (they only
// explain the results, in the log).
func readMachineTimes(broker *process) machineTimes {
	var m machineTimes
	m.broker, _ = cpuTime(broker.pid())
	m.client, _ = cpuTime(os.Getpid())
	m.idle, _ = idleTime()
	return m
}
