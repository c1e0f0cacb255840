package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// publishTimeout bounds one QoS 1 Publish (PUBACK wait) beyond the cell.
const publishTimeout = 30 * time.Second

// throughputCell is one throughput measurement: a QoS and a payload size.
type throughputCell struct {
	qos  byte
	size int
}

func (c throughputCell) String() string { return fmt.Sprintf("QoS %d, %s", c.qos, byteSize(c.size)) }

// throughputResult is what one target achieved in one cell (or the sum
// over the cell's rounds).
type throughputResult struct {
	sent     int64         // QoS 0: written; QoS 1: acknowledged with success
	received int64         // delivered to the subscriber
	elapsed  time.Duration // first publish to last delivery
	cpu      time.Duration // CPU used by the hop meanwhile; 0 without a hop
}

// add sums two rounds.
func (r throughputResult) add(o throughputResult) throughputResult {
	return throughputResult{r.sent + o.sent, r.received + o.received, r.elapsed + o.elapsed, r.cpu + o.cpu}
}

// rate is deliveries per second.
func (r throughputResult) rate() float64 { return float64(r.received) / r.elapsed.Seconds() }

// cpuPerMsg is the hop's CPU time per delivered message.
func (r throughputResult) cpuPerMsg() time.Duration {
	return r.cpu / time.Duration(max(r.received, 1))
}

// lost is what the subscriber did not get of what was sent (acknowledged,
// for QoS 1).
func (r throughputResult) lost() int64 { return max(r.sent-r.received, 0) }

// counter counts deliveries and remembers when the last one arrived.
type counter struct {
	n    atomic.Int64
	last atomic.Int64 // UnixNano of the latest delivery
}

func (c *counter) onPublish(*paho.Publish) {
	c.n.Add(1)
	c.last.Store(time.Now().UnixNano())
}

// drain waits until want deliveries arrived, nothing arrived for quiet, or
// limit passed, whichever is first.
func (c *counter) drain(want int64, quiet, limit time.Duration) {
	end := time.Now().Add(limit)
	prev, since := c.n.Load(), time.Now()
	for c.n.Load() < want && time.Now().Before(end) {
		time.Sleep(5 * time.Millisecond)
		if n := c.n.Load(); n != prev {
			prev, since = n, time.Now()
		} else if time.Since(since) > quiet {
			return
		}
	}
}

// qos1Quiet is how long a QoS 1 drain waits without a delivery before the
// missing messages count as lost: long, because loss fails the run and a
// loaded machine (or the race detector) can stall a subscriber for a while.
const qos1Quiet = 3 * time.Second

// quietFor returns the drain's quiet period for qos.
func quietFor(s settings, qos byte) time.Duration {
	if qos > 0 {
		return max(s.quiet, qos1Quiet)
	}
	return s.quiet
}

// session is one cell's set of connected clients on a target.
type session struct {
	sub     *paho.Client
	pubs    []*paho.Client
	lost    firstError  // first connection that ended before close
	closing atomic.Bool // close has begun: errors are expected
}

func (s *session) onLost(err error) {
	if !s.closing.Load() {
		s.lost.set(err)
	}
}

// err returns the first connection loss, wrapped, or else other.
func (s *session) err(other error) error {
	if e := s.lost.get(); e != nil {
		return fmt.Errorf("connection lost: %w", e)
	}
	return other
}

// openSession connects one subscriber on topic+"/#" at qos (with onPublish)
// and n publishers, all through t.
func openSession(ctx context.Context, t *target, id *identity, run, topic string, qos byte, n int, onPublish func(*paho.Publish)) (*session, error) {
	s := &session{}
	sub, err := dialClient(ctx, clientOptions{addr: t.addr, clientID: "bench-" + run + "-sub", token: t.token(id, 0), onPublish: onPublish, onLost: s.onLost})
	if err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	s.sub = sub
	sa, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic + "/#", QoS: qos}}})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("subscribe %s/#: %w", topic, err)
	}
	if len(sa.Reasons) != 1 || sa.Reasons[0] >= 0x80 {
		s.close()
		return nil, fmt.Errorf("subscribe %s/#: SUBACK %x", topic, sa.Reasons)
	}
	for i := range n {
		c, err := dialClient(ctx, clientOptions{addr: t.addr, clientID: fmt.Sprintf("bench-%s-pub%d", run, i), token: t.token(id, i+1), onLost: s.onLost})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("publisher %d: %w", i, err)
		}
		s.pubs = append(s.pubs, c)
	}
	return s, nil
}

// close disconnects every client of the session.
func (s *session) close() {
	s.closing.Store(true)
	var wg sync.WaitGroup
	for _, c := range append([]*paho.Client{s.sub}, s.pubs...) {
		if c != nil {
			wg.Go(func() { closeClient(c) })
		}
	}
	wg.Wait()
}

// firstError keeps the first error reported by concurrent workers.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// publish sends one message and reports whether it was accepted: written for
// QoS 0, acknowledged with a success reason for QoS 1.
func publish(ctx context.Context, c *paho.Client, topic string, qos byte, payload []byte) error {
	resp, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: payload})
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	if qos > 0 && resp != nil && resp.ReasonCode >= 0x80 {
		return fmt.Errorf("publish %s: PUBACK reason 0x%02x", topic, resp.ReasonCode)
	}
	return nil
}

// deliveryWindow is how many messages a publisher may have sent but not
// yet seen delivered to the subscriber. It closes the loop end to end, so
// no target is driven past what it can deliver: without it, QoS 0
// publishers bury the broker in a backlog it drops from and keeps
// processing into the next cell, and QoS 1 PUBACKs (which the broker sends
// on receipt) let an unbounded queue build towards the subscriber.
const deliveryWindow = 256

// runThroughput drives t for dur with s.publishers publishers and one
// subscriber, then waits for the subscriber to drain. Each publisher keeps
// at most deliveryWindow messages undelivered; with QoS 1 it also has up to
// s.window Publish calls waiting for their PUBACK.
func runThroughput(ctx context.Context, t *target, id *identity, s settings, cell throughputCell, run string, dur time.Duration) (throughputResult, error) {
	var res throughputResult
	var got counter
	credits := make([]chan struct{}, s.publishers)
	for i := range credits {
		credits[i] = make(chan struct{}, deliveryWindow)
		for range deliveryWindow {
			credits[i] <- struct{}{}
		}
	}
	onPublish := func(p *paho.Publish) {
		got.onPublish(p)
		if len(p.Payload) > 0 && int(p.Payload[0]) < len(credits) {
			select {
			case credits[p.Payload[0]] <- struct{}{}:
			default:
			}
		}
	}
	topic := benchTopic(run)
	sess, err := openSession(ctx, t, id, run, topic, cell.qos, s.publishers, onPublish)
	if err != nil {
		return res, err
	}
	defer sess.close()

	cpu0, err := hopCPU(t)
	if err != nil {
		return res, err
	}
	workers := 1
	if cell.qos > 0 {
		workers = s.window
	}
	start := time.Now()
	// dctx ends the cell; pctx lets the last QoS 1 Publish calls complete.
	dctx, dcancel := context.WithDeadline(ctx, start.Add(dur))
	defer dcancel()
	pctx, pcancel := context.WithTimeout(ctx, dur+publishTimeout)
	defer pcancel()
	var sent atomic.Int64
	var fail firstError
	var wg sync.WaitGroup
	for i, c := range sess.pubs {
		ptopic := fmt.Sprintf("%s/%d", topic, i)
		payload := make([]byte, cell.size)
		payload[0] = byte(i) // tells the subscriber whose credit to return
		for range workers {
			wg.Go(func() {
				for {
					select {
					case <-credits[i]:
					case <-dctx.Done():
						return
					}
					if err := publish(pctx, c, ptopic, cell.qos, payload); err != nil {
						fail.set(err)
						return
					}
					sent.Add(1)
				}
			})
		}
	}
	wg.Wait()
	res.sent = sent.Load()
	got.drain(res.sent, quietFor(s, cell.qos), s.drainLimit)
	res.received = got.n.Load()
	if err := sess.err(fail.get()); err != nil {
		return res, err
	}
	if res.received == 0 {
		return res, errors.New("the subscriber received nothing")
	}
	res.elapsed = time.Unix(0, got.last.Load()).Sub(start)
	cpu1, err := hopCPU(t)
	if err != nil {
		return res, err
	}
	res.cpu = cpu1 - cpu0
	return res, nil
}

// hopCPU reads the CPU time used so far by t's process (0 for direct).
func hopCPU(t *target) (time.Duration, error) {
	if !t.hop {
		return 0, nil
	}
	return cpuTime(t.proc.pid())
}

// latencyResult holds the end-to-end latency samples of one target (one
// round, or all rounds of a cell).
type latencyResult struct {
	samples        []time.Duration
	sent, received int64
}

// add merges two rounds.
func (r latencyResult) add(o latencyResult) latencyResult {
	return latencyResult{append(r.samples, o.samples...), r.sent + o.sent, r.received + o.received}
}

// percentiles returns p50, p90 and p99 of the samples.
func (r latencyResult) percentiles() [3]time.Duration {
	sorted := slices.Clone(r.samples)
	slices.Sort(sorted)
	return [3]time.Duration{percentile(sorted, 0.50), percentile(sorted, 0.90), percentile(sorted, 0.99)}
}

// lost is what the subscriber did not get of what was sent.
func (r latencyResult) lost() int64 { return max(r.sent-r.received, 0) }

// latencyPayload is the size of a latency probe: a send timestamp and filler.
const latencyPayload = 64

// runLatency publishes 64 B messages at s.rate per second for dur
// from one publisher (QoS 1: up to s.window in flight), each carrying its
// send time, and reports the percentiles of send→delivery. The first 5 % of
// samples (connection warm-up) are dropped.
func runLatency(ctx context.Context, t *target, id *identity, s settings, qos byte, run string, dur time.Duration) (latencyResult, error) {
	var res latencyResult
	n := max(int(dur.Seconds()*float64(s.rate)), 1)
	var mu sync.Mutex
	samples := make([]time.Duration, 0, n)
	var got counter
	onPublish := func(p *paho.Publish) {
		now := time.Now().UnixNano()
		got.onPublish(p)
		if len(p.Payload) >= 8 {
			mu.Lock()
			samples = append(samples, time.Duration(now-int64(binary.BigEndian.Uint64(p.Payload))))
			mu.Unlock()
		}
	}
	topic := benchTopic(run)
	sess, err := openSession(ctx, t, id, run, topic, qos, 1, onPublish)
	if err != nil {
		return res, err
	}
	defer sess.close()

	pub, ptopic := sess.pubs[0], topic+"/0"
	pctx, cancel := context.WithTimeout(ctx, dur+publishTimeout)
	defer cancel()
	interval := time.Second / time.Duration(s.rate)
	window := make(chan struct{}, s.window)
	var sent atomic.Int64
	var fail firstError
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n && pctx.Err() == nil && fail.get() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		payload := make([]byte, latencyPayload)
		binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
		window <- struct{}{}
		wg.Go(func() {
			defer func() { <-window }()
			if err := publish(pctx, pub, ptopic, qos, payload); err != nil {
				fail.set(err)
				return
			}
			sent.Add(1)
		})
	}
	wg.Wait()
	res.sent = sent.Load()
	got.drain(res.sent, quietFor(s, qos), s.drainLimit)
	res.received = got.n.Load()
	if err := sess.err(fail.get()); err != nil {
		return res, err
	}
	mu.Lock()
	defer mu.Unlock()
	if len(samples) == 0 {
		return res, errors.New("the subscriber received nothing")
	}
	res.samples = slices.Clone(samples[len(samples)/20:])
	return res, nil
}

// percentile returns the p-quantile (nearest rank) of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// byteSize formats a payload size: 64 B, 4 KiB.
func byteSize(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}
