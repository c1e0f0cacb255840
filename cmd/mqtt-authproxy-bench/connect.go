package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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
}

// add sums two rounds.
func (r connectResult) add(o connectResult) connectResult {
	return connectResult{r.ok + o.ok, r.failed + o.failed, r.elapsed + o.elapsed, r.cpu + o.cpu}
}

// rate is successful CONNECT → CONNACK per second.
func (r connectResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// cpuPerConnect is the hop's CPU time per successful connection set-up.
func (r connectResult) cpuPerConnect() time.Duration {
	return r.cpu / time.Duration(max(r.ok, 1))
}

// runConnect has s.connectors workers open connections to t for dur:
// each dials, sends CONNECT (with a JWT for the proxy, anonymous otherwise),
// waits for CONNACK 0x00, sends DISCONNECT and closes. The client id is
// unique per connection, so no session is taken over.
//
// token gives the n-th connection's token ("" for anonymous); false ends
// the worker (the fresh tokens ran out).
func runConnect(ctx context.Context, t *target, s settings, dur time.Duration, token func(n int) (string, bool)) (connectResult, error) {
	var res connectResult
	var ok, failed atomic.Int64
	var fail firstError
	cpu0, err := hopCPU(t)
	if err != nil {
		return res, err
	}
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
				if err := connectOnce(t.addr, connectPacket(fmt.Sprintf("bench-c%d-%d", w, n), tok, 30)); err != nil {
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
	if res.failed > 0 {
		return res, fmt.Errorf("%d of %d connections failed, first: %w", res.failed, res.ok+res.failed, fail.get())
	}
	if res.ok == 0 {
		return res, errors.New("no connection succeeded")
	}
	return res, nil
}

// connectOnce performs one connection set-up and a clean disconnect.
func connectOnce(addr string, connect []byte) error {
	nc, err := net.DialTimeout("tcp", addr, connectTimeout)
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
