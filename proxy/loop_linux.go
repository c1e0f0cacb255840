package proxy

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// The relay phase of a connection whose client and broker sockets are both
// plain TCP or Unix sockets runs on an event loop instead of two goroutines
// (issue 5). One edge-triggered epoll set per loop watches every socket of
// its connections; one goroutine per loop waits on it and, for each ready
// socket, reads the packets there, handles each with the same clientFrame /
// upstreamFrame the pumps use, and writes the results out without waiting.
// A burst on many connections is then one wake-up, not one per goroutine,
// and no goroutine is parked and woken per packet; the bench measured the
// difference on a byte relay (BENCHMARKS.md, relay-epoll-uds).
//
// Everything that may wait stays off the loop: token verification on
// re-authentication runs on its own goroutine as before, and ending a
// connection (the final DISCONNECT, written with a deadline) is done by
// finish, on the goroutine stop starts, after the connection has left the
// loop (detach). A connection that lives on the loop from accept
// (native_linux.go) ends on the loop when its sockets take the final bytes
// at once (endOnLoop). A socket the kernel will not take more from holds its
// bytes in its Writer, which then reports Blocked; the loop stops reading
// the socket whose packets go there until EPOLLOUT says the bytes went
// out (open), so memory stays bounded by about one read per direction.
//
// Handlers run on the loop's thread, so whatever they call must not wait:
// audit and debug logging included (a log sink that blocks stalls every
// connection on the loop, where it stalled one pump before). A connection
// is served until a read comes back short, a gate closes, or it has read
// turnBudget bytes from a side: it is then served again after the loop's
// next events, so a client keeping its socket full delays the others on
// its loop by one turn at a time.

// Sides of a connection, as stored in an epoll event's data.
const (
	sideClient   = 0
	sideUpstream = 1
)

// loopEvents is what each socket is registered for; EPOLLOUT is added
// only while its Writer holds refused bytes (rawSock.armOut).
const loopEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET

// wakeToken is the epoll data of a loop's eventfd, which tells it to check
// whether it still has connections.
const wakeToken = 0

// eventLoop is one epoll set and the goroutine serving it. It runs only
// while it has connections: the first attach starts it, and it exits when
// the last one leaves, so an idle Server holds no goroutine.
type eventLoop struct {
	mu        sync.Mutex
	running   bool
	epfd      int
	wakefd    int
	conns     map[uint32]*loopConn
	acceptors map[uint32]*loopAcceptor // listening sockets (native_linux.go)
	next      uint32                   // last token handed out
	again     []*loopConn              // connections that spent their turn with work left
	// serving: the loop is handling a wake's events, and checks again
	// before it waits, so a requeue meanwhile needs no wake.
	serving bool
}

// loopMember is what an epoll event is for: a connection or a listener.
type loopMember interface {
	handle(side int, events uint32)
}

// loopConn is a connection's membership in a loop.
type loopConn struct {
	c     *conn
	l     *eventLoop
	token uint32

	// mu is held while the connection's events are handled, and by
	// detach: once detached, the loop never touches the connection.
	mu       sync.Mutex
	detached bool
	client   *rawSock
	upstream *rawSock
	// clientReady / upstreamReady: an edge said the socket is readable
	// and no read has since met EAGAIN.
	clientReady, upstreamReady bool
	queued                     bool // waiting in l.again for another turn

	lastRead  time.Time     // the last client read
	keepAlive *time.Timer   // ends the connection after 1.5 × keep alive of silence
	ended     chan struct{} // closed by finish; nil for a native connection

	// The handshake of a native connection (native_linux.go).
	phase      int
	ctx        context.Context // Serve's
	hsTimer    *time.Timer     // connect timeout, then dial timeout
	hsDeadline time.Time       // when hsTimer is due
	kaLimit    time.Duration   // the keep-alive limit hsTimer enforces once relaying
	cp         *packetcodec.Connect
	id         *authz.Identity
	maxSize    uint32
	dialPause  time.Duration
	dialFull   bool        // a dial met a full accept queue
	redial     *time.Timer // the next dial after one
}

// procsPerLoop is how many processors share one loop. Fewer loops batch
// more: on 2 cores one loop relayed QoS 1 at 11 µs of CPU per message and
// two at 18 µs (bench, 2026-11-29), the loops then waking each other's
// cores. The loop's thread is busy for a fraction of each message only
// (the kernel's socket work is most of it), so a few cores share one.
const procsPerLoop = 4

// newLoops makes a Server's loops, each started when its first
// connection arrives.
func newLoops() []*eventLoop {
	loops := make([]*eventLoop, max(1, runtime.GOMAXPROCS(0)/procsPerLoop))
	for i := range loops {
		loops[i] = &eventLoop{conns: map[uint32]*loopConn{}, acceptors: map[uint32]*loopAcceptor{}}
	}
	return loops
}

// attachToLoop moves c's relay phase onto an event loop, if both its
// sockets qualify and it is not already ending, and handles what arrived
// before. It returns the membership, or nil when c must run the pumps.
func (c *conn) attachToLoop() *loopConn {
	lc := c.takeOverSockets()
	if lc == nil {
		return nil
	}
	defer lc.mu.Unlock()
	lc.startLocked()
	return lc
}

// takeOverSockets registers c's sockets with a loop and makes the Readers
// and Writers use the loop's non-blocking duplicates. It returns with lc.mu
// held, so the loop cannot handle an event of c before the switch is done.
func (c *conn) takeOverSockets() *loopConn {
	loops := c.srv.loops
	if len(loops) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ending {
		return nil
	}
	cs, err := dupRawSock(c.nc)
	if err != nil {
		return nil
	}
	us, err := dupRawSock(c.up)
	if err != nil {
		cs.discard()
		return nil
	}
	l := loops[c.srv.nextLoop.Add(1)%uint32(len(loops))]
	lc := &loopConn{c: c, l: l, client: cs, upstream: us, ended: make(chan struct{})}
	lc.mu.Lock()
	if err := l.add(lc); err != nil {
		lc.mu.Unlock()
		c.debug("event loop unavailable, relaying with goroutines", "err", err)
		cs.discard()
		us.discard()
		return nil
	}
	// From here the duplicates are the sockets: close Go's originals
	// (which takes them out of Go's poller, so only the loop wakes for
	// them) and read and write the duplicates without waiting.
	_ = c.nc.Close()
	_ = c.up.Close()
	c.nc, c.up = cs, us
	c.cr.SetNonblocking(cs)
	c.cw.SetStream(cs)
	c.ur.SetNonblocking(us)
	c.uw.SetStream(us)
	lc.lastRead = time.Now()
	c.loop = lc
	return lc
}

// startLocked handles what arrived before the sockets were registered
// (bytes the handshake's Readers already hold, and any edge the
// registration consumed), then arms the keep-alive timer. lc.mu is held.
func (lc *loopConn) startLocked() {
	if ka := lc.c.keepAlive; ka > 0 {
		limit := ka * 3 / 2
		if lc.hsTimer != nil {
			// A native connection's handshake timer serves on (onTimer):
			// one timer per connection, not two.
			lc.kaLimit, lc.keepAlive = limit, lc.hsTimer
		} else {
			lc.keepAlive = time.AfterFunc(math.MaxInt64, func() { lc.checkKeepAlive(limit) })
		}
		lc.keepAlive.Reset(limit)
	}
	lc.clientReady, lc.upstreamReady = true, true
	lc.service()
}

// checkKeepAlive ends the connection with DISCONNECT 0x8D when the client
// has sent nothing for limit [MQTT-3.1.2-22], else re-arms for the rest.
func (lc *loopConn) checkKeepAlive(limit time.Duration) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.detached {
		return
	}
	idle := time.Since(lc.lastRead)
	if lc.clientReady {
		// Bytes are waiting that the loop holds back while the broker
		// is slow: the client is not silent.
		idle = 0
	}
	if idle < limit {
		lc.keepAlive.Reset(limit - idle)
		return
	}
	lc.end(clientReadEnding(os.ErrDeadlineExceeded))
}

// add registers lc's sockets, starting the loop if it is not running.
func (l *eventLoop) add(lc *loopConn) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.ensureRunningLocked(); err != nil {
		return err
	}
	lc.token = l.tokenLocked()
	for side, s := range []*rawSock{lc.client, lc.upstream} {
		if s == nil {
			continue // a native connection's broker socket comes later
		}
		if err := l.register(lc, side, s, loopEvents); err != nil {
			if side == sideUpstream {
				_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, lc.client.fd, nil)
			}
			l.wakeIfIdleLocked()
			return err
		}
	}
	l.conns[lc.token] = lc
	return nil
}

// ensureRunningLocked starts the loop if it is not running.
func (l *eventLoop) ensureRunningLocked() error {
	if l.running {
		return nil
	}
	return l.startLocked()
}

// tokenLocked hands out an unused token.
func (l *eventLoop) tokenLocked() uint32 {
	for {
		l.next++
		_, conn := l.conns[l.next]
		_, acc := l.acceptors[l.next]
		if l.next != wakeToken && !conn && !acc {
			return l.next
		}
	}
}

// register adds socket s of lc, on side, to the loop's set with events.
// The loop is running: lc is (being) added to it.
func (l *eventLoop) register(lc *loopConn, side int, s *rawSock, events uint32) error {
	// Under the socket's mutex: a Close (a stop, from another goroutine)
	// either comes after, and takes the registration with it, or before,
	// and the descriptor, which may already be another socket's, is not
	// touched.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.closing.Load() {
		return net.ErrClosed
	}
	s.ev = unix.EpollEvent{Events: loopEvents, Fd: int32(lc.token), Pad: int32(side)}
	s.epfd, s.owned = l.epfd, true
	s.outArmed = events&unix.EPOLLOUT != 0
	ev := s.ev
	ev.Events = events
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// addAcceptor registers a's listening socket, level-triggered and
// exclusive, starting the loop if it is not running.
func (l *eventLoop) addAcceptor(a *acceptor) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.ensureRunningLocked(); err != nil {
		return err
	}
	la := &loopAcceptor{a: a, l: l, token: l.tokenLocked()}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(la.token), Pad: sideListener}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, a.fd, &ev); err != nil {
		l.wakeIfIdleLocked()
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.acceptors[la.token] = la
	a.regs = append(a.regs, la)
	return nil
}

// removeAcceptor takes la's listening socket out of the loop. a.mu is held.
func (l *eventLoop) removeAcceptor(la *loopAcceptor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !la.paused {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, la.a.fd, nil)
	}
	delete(l.acceptors, la.token)
	l.wakeIfIdleLocked()
}

// startLocked creates the epoll set and its eventfd and starts the loop.
func (l *eventLoop) startLocked() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeToken}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.epfd, l.wakefd, l.running = epfd, wakefd, true
	go l.run(epfd, wakefd)
	return nil
}

// wakeIfIdleLocked wakes the loop to exit if it serves nothing.
func (l *eventLoop) wakeIfIdleLocked() {
	if len(l.conns) == 0 && len(l.acceptors) == 0 {
		l.wakeLocked()
	}
}

// wakeLocked makes the loop check whether it still has connections.
func (l *eventLoop) wakeLocked() {
	var one = [8]byte{1}
	_, _ = unix.Write(l.wakefd, one[:])
}

// remove forgets lc, whose later events the loop then ignores; closing
// its sockets takes them out of the epoll set, so no epoll_ctl is spent
// here (issue 5: CONNECT rate). The last one out wakes the loop so it can
// exit.
func (l *eventLoop) remove(lc *loopConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, lc.token)
	l.wakeIfIdleLocked()
}

// yieldEvery is how often a busy loop passes through Go's scheduler. A
// goroutine that neither blocks in Go nor yields looks, after 10 ms, like one
// that runs too long: sysmon then takes its P away in the next system call,
// and each time drops back to polling every 20 µs. Measured under 8,000
// CONNECT/s: 0.27 nanosleeps per CONNECT before, 0.02 with the yield, and
// about 6 % less of the loop's CPU per CONNECT.
const yieldEvery = 5 * time.Millisecond

// maxEvents is how many ready sockets one epoll_wait returns at most.
const maxEvents = 256

// run is the loop: wait, look the ready connections up, handle each.
func (l *eventLoop) run(epfd, wakefd int) {
	// A thread of its own: the loop blocks in epoll_wait, not in Go's
	// scheduler, and wakes where it slept.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	events := make([]unix.EpollEvent, maxEvents)
	ready := make([]loopMember, maxEvents)
	var spare []*loopConn // the other buffer of l.again
	lastYield := time.Now()
	for {
		if now := time.Now(); now.Sub(lastYield) >= yieldEvery {
			// Unlocked: a locked thread's Gosched hands its P to another
			// thread and sleeps until it comes back (22 µs, against 50 ns).
			runtime.UnlockOSThread()
			runtime.Gosched()
			runtime.LockOSThread()
			lastYield = now
		}
		// Connections requeued during the last batch are served after
		// whatever is ready now, without waiting for more.
		l.mu.Lock()
		l.serving = false
		wait := -1
		if len(l.again) > 0 {
			wait = 0
		}
		l.mu.Unlock()
		n, err := unix.EpollWait(epfd, events, wait)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			// Not expected with a valid set; the connections would hang,
			// so fail loudly rather than spin.
			panic(os.NewSyscallError("epoll_wait", err))
		}
		l.mu.Lock()
		l.serving = true
		// Served after this wake's events: those that waited go first.
		again := l.again
		l.again = spare
		for i, ev := range events[:n] {
			ready[i] = nil
			if ev.Fd == wakeToken {
				var buf [8]byte
				_, _ = unix.Read(wakefd, buf[:])
				if len(l.conns) == 0 && len(l.acceptors) == 0 {
					clear(again) // all detached
					l.running, l.serving = false, false
					unix.Close(wakefd)
					unix.Close(epfd)
					l.mu.Unlock()
					return
				}
				continue
			}
			if ev.Pad == sideListener {
				if la := l.acceptors[uint32(ev.Fd)]; la != nil {
					ready[i] = la
				}
			} else if lc := l.conns[uint32(ev.Fd)]; lc != nil {
				ready[i] = lc
			}
		}
		l.mu.Unlock()
		for i, ev := range events[:n] {
			if m := ready[i]; m != nil {
				m.handle(int(ev.Pad), ev.Events)
				ready[i] = nil
			}
		}
		for i, lc := range again {
			lc.resume()
			again[i] = nil
		}
		spare = again[:0]
	}
}

// requeue has the loop serve lc again after the events of its next wake,
// which it makes happen at once: through the eventfd if the loop may be
// waiting, not while it serves a batch (it then looks before it waits).
// Once only: a connection already waiting gets its turn there, however many
// events it had meanwhile. lc.mu is held.
func (l *eventLoop) requeue(lc *loopConn) {
	if lc.queued {
		return
	}
	lc.queued = true
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.again) == 0 && !l.serving {
		l.wakeLocked()
	}
	l.again = append(l.again, lc)
}

// resume serves a requeued connection's next turn, if it still relays.
func (lc *loopConn) resume() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.queued = false
	if !lc.detached && lc.phase == phaseRelay {
		lc.service()
	}
}

// handle serves one epoll event of one of lc's sockets.
func (lc *loopConn) handle(side int, events uint32) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.detached {
		return
	}
	if lc.phase != phaseRelay {
		lc.handshakeEvent(side, events)
		return
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		hangup := events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
		if side == sideClient {
			lc.clientReady = true
			lc.c.cr.Readable(hangup)
		} else {
			lc.upstreamReady = true
			lc.c.ur.Readable(hangup)
		}
	}
	lc.service()
	if events&unix.EPOLLOUT != 0 {
		s := lc.client
		if side == sideUpstream {
			s = lc.upstream
		}
		s.disarmIfDone()
	}
}

// service reads and handles what the sockets have, each as long as its
// gate is open, then flushes both Writers, and goes round again while a
// socket with bytes waiting has an open gate. A Writer the kernel would
// not empty has armed EPOLLOUT; its event brings the loop back here.
func (lc *loopConn) service() {
	c := lc.c
	clientBudget, upstreamBudget := turnBudget, turnBudget
	for {
		if lc.clientReady && lc.open(c.uw, c.cw) {
			lc.lastRead = time.Now()
			c.readAt = int64(lc.lastRead.Sub(clockBase))
			if e := lc.drain(c.cr, &lc.clientReady, &clientBudget, c.clientFrame, clientReadEnding, c.uw, c.cw); e != nil {
				lc.end(*e)
				return
			}
		}
		if lc.upstreamReady && lc.open(c.cw, c.uw) {
			if e := lc.drain(c.ur, &lc.upstreamReady, &upstreamBudget, c.upstreamFrame, upstreamLost, c.cw, c.uw); e != nil {
				lc.end(*e)
				return
			}
		}
		if err := c.uw.Flush(); err != nil {
			lc.end(upstreamLost(err))
			return
		}
		if err := c.cw.Flush(); err != nil {
			lc.end(clientWriteFailed(err))
			return
		}
		// Round again if a socket with bytes waiting has an open gate,
		// including one the flushes just reopened: its edge is spent, so
		// no event would bring the loop back for it. Every round reads a
		// frame or meets EAGAIN, so this cannot spin.
		clientMore := lc.clientReady && lc.open(c.uw, c.cw)
		upstreamMore := lc.upstreamReady && lc.open(c.cw, c.uw)
		if !clientMore && !upstreamMore {
			return
		}
		if (!clientMore || clientBudget <= 0) && (!upstreamMore || upstreamBudget <= 0) {
			// Turn spent: the loop's other connections first.
			lc.l.requeue(lc)
			return
		}
	}
}

// turnBudget is how many bytes of packets one turn of a connection reads
// from each side before the loop serves the others: a client that keeps
// its socket full delays the rest of its loop by one turn (at most about a
// millisecond of 64-byte PUBLISHes), not until it pauses.
const turnBudget = 64 << 10

// answerBacklog bounds what the proxy's own answers to a socket (a PUBACK
// for a denied publish, a SUBACK; a PUBACK upstream for a delivery it
// filtered) may pile up while that peer does not read: past it the loop
// stops reading the peer too.
const answerBacklog = 64 << 10

// open is the gate of a socket whose packets are forwarded to fwd and
// answered on back: closed while fwd holds refused bytes (the other side
// is slow: stop reading this one, instead of buffering) or back holds more
// than answerBacklog. A slow reader on one side never stops the other
// direction, which its own progress may depend on.
func (lc *loopConn) open(fwd, back *packetcodec.Writer) bool {
	if blocked, _ := fwd.Backlog(); blocked {
		return false
	}
	_, n := back.Backlog()
	return n < answerBacklog
}

// drain handles the frames r has until its socket runs dry (clearing
// *ready), its gate closes or the bytes read use up *budget.
func (lc *loopConn) drain(r *packetcodec.Reader, ready *bool, budget *int, handle func(packetcodec.Frame) *ending, onErr func(error) ending, fwd, back *packetcodec.Writer) *ending {
	for *budget > 0 {
		f, err := r.ReadFrame()
		if err == packetcodec.ErrWouldBlock {
			*ready = false
			return nil
		}
		if err != nil {
			return endingOf(onErr(err))
		}
		*budget -= len(f.Raw)
		if e := handle(f); e != nil {
			return e
		}
		if !lc.open(fwd, back) {
			return nil
		}
	}
	return nil
}

// end takes the connection off the loop and has finish carry e out on
// another goroutine; a native connection ends on the loop if it can
// (endOnLoop). lc.mu is held.
func (lc *loopConn) end(e ending) {
	if lc.c.native {
		lc.endOnLoop(e)
		return
	}
	lc.detachLocked()
	lc.c.stop(e)
}

// endOnLoop does finish's work for a native connection without a
// goroutine when the sockets take the final bytes at once, which they
// nearly always do; otherwise a goroutine writes the rest with finish's
// deadlines. lc.mu is held.
func (lc *loopConn) endOnLoop(e ending) {
	c := lc.c
	if _, ok := c.claimEnd(); !ok {
		lc.detachLocked() // the finisher's own detach then finds it done
		return
	}
	e = c.finalEnding(e)
	c.queueFinal(e)
	// Still the loop's: the sockets refuse what they cannot take now.
	_ = c.cw.Flush()
	_ = c.uw.Flush()
	clientLeft, _ := c.cw.Backlog()
	upstreamLeft, _ := c.uw.Backlog()
	lc.detachLocked()
	if clientLeft || upstreamLeft {
		c.bgAdd()
		go func() {
			c.flushFinal()
			c.closeEnded(e)
			c.bgDone()
			c.bg.Wait()
			c.closeNative()
		}()
		return
	}
	c.closeEnded(e)
	if c.bgActive.Load() == 0 {
		// Claimed under mu: no stop adds to bg from here, so it stays 0.
		c.closeNative()
		return
	}
	go func() {
		c.bg.Wait()
		c.closeNative()
	}()
}

// detach takes the connection off the loop; afterwards its sockets are
// blocking sockets of finish's alone.
func (lc *loopConn) detach() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.detachLocked()
}

func (lc *loopConn) detachLocked() {
	if lc.detached {
		return
	}
	lc.detached = true
	if lc.keepAlive != nil {
		lc.keepAlive.Stop()
	}
	// Released before the loop may exit and close its epoll set, so no
	// Write arms EPOLLOUT in a closed set.
	lc.client.release()
	if lc.upstream != nil {
		lc.upstream.release()
	}
	lc.l.remove(lc)
}
