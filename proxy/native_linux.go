package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// Connections accepted on a plain TCP or Unix listener, towards a broker
// dialled without TLS at a literal address, live on an event loop from
// accept to close (issue 5: CONNECT rate). The loop accepts them itself,
// reads the CONNECT, takes the identity from the verified-token cache,
// dials the broker with a non-blocking socket and exchanges CONNECT and
// CONNACK as events, and then relays as loop_linux.go describes; no
// goroutine, no hand-over of sockets from Go's poller and no Go dialer is
// spent on a CONNECT whose token the proxy has seen before. Only what may
// wait leaves the loop: verifying a token not in the cache runs on a
// goroutine, which then carries on the handshake's non-blocking steps
// under the connection's lock (as the loop would); a final answer (a
// refusal's CONNACK, the last DISCONNECTs) that the socket does not take
// at once is written on a goroutine with finish's deadlines (endOnLoop,
// refuseHandshake).
//
// The steps and answers are the blocking handshake's (connect.go,
// upstream.go), shared function by function; only the waiting differs.

// Handshake phases of a loopConn; phaseRelay, the zero value, is also the
// phase of a connection attached to a loop after a blocking handshake.
const (
	phaseRelay   = iota
	phaseConnect // awaiting the CONNECT
	phaseVerify  // a goroutine verifies the token
	phaseDial    // a non-blocking connect to the broker is in progress
	phaseConnack // the CONNECT is sent, awaiting the broker's CONNACK
)

// sideListener marks a listening socket's epoll event (data: its token).
const sideListener = 2

// nativeTarget is what a Server needs to run connections on its loops from
// accept: the broker's address as a socket address, nil when connections
// cannot (TLS upstream, a Dialer other than a plain net.Dialer, a host
// name to resolve).
type nativeTarget struct {
	sa        unix.Sockaddr
	addr      net.Addr // sa as a net.Addr, shared by every connection (read only)
	family    int
	keepAlive time.Duration // TCP keep-alive period; < 0 for none (net.Dialer.KeepAlive)
}

// sockaddr returns a copy of the broker's address for one dial: Connect
// writes into the Sockaddr it is given, so dials must not share one.
func (t nativeTarget) sockaddr() unix.Sockaddr {
	switch sa := t.sa.(type) {
	case *unix.SockaddrInet4:
		c := *sa
		return &c
	case *unix.SockaddrInet6:
		c := *sa
		return &c
	case *unix.SockaddrUnix:
		c := *sa
		return &c
	}
	return t.sa
}

// newNativeTarget decides whether cfg and opts allow native connections.
func newNativeTarget(cfg Config, opts Options) nativeTarget {
	d, ok := opts.Dialer.(*net.Dialer)
	if !ok || cfg.Upstream.TLS.Enabled || d.LocalAddr != nil || d.Control != nil || d.ControlContext != nil ||
		d.Resolver != nil || d.Cancel != nil || !d.Deadline.IsZero() || d.KeepAliveConfig != (net.KeepAliveConfig{}) ||
		d.Timeout > 0 && d.Timeout < cfg.Upstream.DialTimeout || d.MultipathTCP() {
		// The loop dials with the dial timeout and Go's keep-alive
		// default (or d.KeepAlive) only; anything else needs the Dialer.
		return nativeTarget{}
	}
	keepAlive := d.KeepAlive
	if keepAlive == 0 {
		keepAlive = 15 * time.Second // Go's default
	}
	network, addr := cfg.Upstream.Endpoint()
	if network == "unix" {
		// x/sys/unix takes a leading '@' for an abstract name, as Go's
		// net package does.
		return nativeTarget{sa: &unix.SockaddrUnix{Name: addr}, family: unix.AF_UNIX, keepAlive: -1}.withAddr()
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Addr().Zone() != "" {
		return nativeTarget{} // a host name, or a zone: Go's dialer resolves it
	}
	if ip := ap.Addr().Unmap(); ip.Is4() {
		return nativeTarget{sa: &unix.SockaddrInet4{Addr: ip.As4(), Port: int(ap.Port())}, family: unix.AF_INET, keepAlive: keepAlive}.withAddr()
	}
	return nativeTarget{sa: &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}, family: unix.AF_INET6, keepAlive: keepAlive}.withAddr()
}

// withAddr sets t.addr from t.sa.
func (t nativeTarget) withAddr() nativeTarget {
	t.addr = brokerAddr(t.sa)
	return t
}

// acceptor is a listening socket the loops accept on, each registered for
// it with EPOLLEXCLUSIVE so one connection wakes one loop.
type acceptor struct {
	srv     *Server
	ctx     context.Context
	network string // "tcp" or "unix"
	local   net.Addr
	failed  chan error // a non-temporary accept error, for Serve

	mu     sync.Mutex // held while accepting, and by close
	fd     int
	closed bool
	regs   []*loopAcceptor
}

// loopAcceptor is an acceptor's registration with one loop.
type loopAcceptor struct {
	a       *acceptor
	l       *eventLoop
	token   uint32
	paused  bool // taken out of the epoll set after a resource error
	backoff time.Duration
}

// acceptBatch bounds the connections one event accepts, so a flood of
// CONNECTs does not starve the loop's relaying connections.
const acceptBatch = 32

// serveOnLoops serves ln from the loops if ln and the configuration allow
// it, until ctx is done or Shutdown is called. It reports false, having
// done nothing, when Serve must accept with goroutines instead.
func (s *Server) serveOnLoops(ctx context.Context, ln net.Listener) (bool, error) {
	if s.native.sa == nil || len(s.loops) == 0 {
		return false, nil
	}
	network := "tcp"
	switch ln.(type) {
	case *net.TCPListener:
	case *net.UnixListener:
		network = "unix"
	default:
		return false, nil
	}
	fd, err := dupFD(ln.(syscall.Conn))
	if err != nil {
		return false, nil
	}
	a := &acceptor{srv: s, ctx: ctx, network: network, local: ln.Addr(), fd: fd, failed: make(chan error, 1)}
	for _, l := range s.loops {
		if err := l.addAcceptor(a); err != nil {
			s.log.Debug("event loop unavailable, accepting with goroutines", "err", err)
			a.close()
			return false, nil
		}
	}
	if network == "tcp" {
		// Out of Go's poller, which would otherwise wake for every
		// connection the loops accept. (A Unix listener stays open: its
		// Close would remove the socket file the duplicate still serves.)
		_ = ln.Close()
	}
	defer ln.Close()
	select {
	case <-ctx.Done():
		a.close()
		s.stopNative(ctx)
		return true, nil
	case <-s.shutdown:
	case err = <-a.failed:
	}
	a.close()
	return true, err
}

// stopNative ends, as a shutdown does, the connections the loops accepted
// for a Serve with ctx, now done. No goroutine of theirs waits on ctx (a
// context.AfterFunc per connection cost a CONNECT an allocation and a
// lock shared by all): Serve does it once, after accepting stopped.
func (s *Server) stopNative(ctx context.Context) {
	s.mu.Lock()
	var accepted []*conn
	for c := range s.conns {
		if c.native && c.loop.ctx == ctx {
			accepted = append(accepted, c)
		}
	}
	s.mu.Unlock()
	for _, c := range accepted {
		c.stop(endShutdown())
	}
}

// close stops accepting: no loop accepts on the socket after it returns.
func (a *acceptor) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.closed = true
	for _, la := range a.regs {
		la.l.removeAcceptor(la)
	}
	unix.Close(a.fd)
}

// handle accepts what the listening socket has, up to acceptBatch; the
// registration is level-triggered, so the rest raises the next event.
func (la *loopAcceptor) handle(int, uint32) {
	a := la.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || la.paused {
		return
	}
	for range acceptBatch {
		// Raw: x/sys/unix.Accept4 would also ask the listening socket for
		// its protocol on every call. The peer's address is decoded now,
		// without allocating (the socket may be gone when a log line
		// wants it); its net.Addr is made only if one does.
		var rsa unix.RawSockaddrAny
		rlen := uint32(unix.SizeofSockaddrAny)
		r, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(a.fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&rlen)),
			unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		var err error
		if errno != 0 {
			err = errno
		}
		switch {
		case err == nil:
			la.backoff = 0
			a.srv.serveNative(a, la.l, int(r), peerAddr(&rsa, rlen))
		case err == unix.EAGAIN:
			return
		case err == unix.EINTR || err == unix.ECONNABORTED:
		case err == unix.EMFILE || err == unix.ENFILE || err == unix.ENOBUFS || err == unix.ENOMEM:
			la.pause(os.NewSyscallError("accept4", err))
			return
		default:
			select {
			case a.failed <- fmt.Errorf("accept on %s: %w", a.local, os.NewSyscallError("accept4", err)):
			default:
			}
			return
		}
	}
}

// pause takes the listening socket out of this loop's set for a growing
// pause after a resource error (out of descriptors, say), which a
// level-triggered registration would otherwise report again at once; as
// Serve does, from 5 ms to 1 s. a.mu is held.
func (la *loopAcceptor) pause(err error) {
	la.backoff = min(max(2*la.backoff, 5*time.Millisecond), time.Second)
	la.a.srv.log.Warn("accept failed", "err", err, "retry_in", la.backoff)
	la.a.srv.metrics.acceptErrors.Inc()
	if unix.EpollCtl(la.l.epfd, unix.EPOLL_CTL_DEL, la.a.fd, nil) != nil {
		return // still registered: the next event retries
	}
	la.paused = true
	time.AfterFunc(la.backoff, func() {
		la.a.mu.Lock()
		defer la.a.mu.Unlock()
		if la.a.closed {
			return
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(la.token), Pad: sideListener}
		if err := unix.EpollCtl(la.l.epfd, unix.EPOLL_CTL_ADD, la.a.fd, &ev); err != nil {
			select {
			case la.a.failed <- fmt.Errorf("accept on %s: %w", la.a.local, os.NewSyscallError("epoll_ctl", err)):
			default:
			}
			return
		}
		la.paused = false
	})
}

// serveNative starts the handshake of an accepted socket on loop l.
func (s *Server) serveNative(a *acceptor, l *eventLoop, fd int, peer netip.AddrPort) {
	if a.network == "tcp" {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	rs := &rawSock{fd: fd, local: a.local, peer: peer}
	if a.network == "unix" {
		rs.remote = unnamedUnixPeer
	}
	c := newConn(s, rs)
	lc := &loopConn{c: c, l: l, client: rs, phase: phaseConnect, ctx: a.ctx}
	c.native, c.loop = true, lc
	c.cr.SetNonblocking(rs)
	c.cw.SetStream(rs)
	// Held from before c can be stopped (Shutdown sees it once admitted):
	// abortHandshake then runs only after the registration.
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if !s.admitConn(c) {
		rs.discard()
		return
	}
	s.metrics.active.Inc()
	if err := l.add(lc); err != nil {
		c.log().Warn("connection dropped", "err", err)
		lc.closeHandshake()
		return
	}
	lc.armHandshake(s.cfg.Limits.ConnectTimeout)
}

// tcpKeepAliveIdle is the idle time before Go's default keep-alive probes
// (then 9 more, 15 s apart): a dead peer is found after 150 s.
const (
	tcpKeepAliveIdle    = 15 * time.Second
	tcpKeepAliveDetects = tcpKeepAliveIdle + 9*15*time.Second
)

// watchClient gives an accepted TCP client Go's default keep-alive when its
// MQTT keep-alive would not find a dead peer sooner: with none, or with a
// limit (1.5 × keep alive) over 150 s. Otherwise the keep-alive timer ends
// a silent connection first, and the probes would only cost four system
// calls per CONNECT. Called once the CONNACK has set the keep alive.
func (lc *loopConn) watchClient() {
	if _, tcp := lc.client.local.(*net.TCPAddr); !tcp {
		return
	}
	if ka := lc.c.keepAlive; ka == 0 || ka*3/2 > tcpKeepAliveDetects {
		setKeepAlive(lc.client.fd, tcpKeepAliveIdle)
	}
}

// setKeepAlive turns on keep-alive probes after idle, as Go's net package
// does for a KeepAlive of idle: then every 15 s, 9 times.
func setKeepAlive(fd int, idle time.Duration) {
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int((idle+time.Second-1)/time.Second))
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 15)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 9)
}

// peerAddr decodes the IPv4 or IPv6 address accept4 wrote into rsa
// (n bytes), without allocating; anything else is the zero AddrPort.
func peerAddr(rsa *unix.RawSockaddrAny, n uint32) netip.AddrPort {
	port := func(p *uint16) uint16 { // network byte order
		b := (*[2]byte)(unsafe.Pointer(p))
		return uint16(b[0])<<8 | uint16(b[1])
	}
	switch {
	case rsa.Addr.Family == unix.AF_INET && n >= unix.SizeofSockaddrInet4:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port(&sa.Port))
	case rsa.Addr.Family == unix.AF_INET6 && n >= unix.SizeofSockaddrInet6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port(&sa.Port))
	}
	return netip.AddrPort{}
}

// unnamedUnixPeer is the address of a Unix client socket, which is
// (nearly always) unnamed; Go's listener shows it as "@" too.
var unnamedUnixPeer net.Addr = &net.UnixAddr{Name: "@", Net: "unix"}

// brokerAddr is the net.Addr of the broker's socket address (one of the
// three newNativeTarget makes), made once per Server.
func brokerAddr(sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return &net.TCPAddr{}
}

// handshakeEvent serves an event of a connection still in its handshake.
// lc.mu is held.
func (lc *loopConn) handshakeEvent(side int, events uint32) {
	c := lc.c
	hangup := events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
	readable := hangup || events&unix.EPOLLIN != 0
	if side == sideClient {
		if readable {
			// Bytes after the CONNECT wait in the socket (or the
			// Reader) until relaying starts.
			lc.clientReady = true
			c.cr.Readable(hangup)
		}
		if lc.phase == phaseConnect && lc.clientReady {
			lc.readConnect()
		}
		return
	}
	if readable {
		lc.upstreamReady = true
		c.ur.Readable(hangup)
	}
	switch lc.phase {
	case phaseDial:
		if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			lc.connected()
		}
	case phaseConnack:
		lc.readConnack()
	}
	if events&unix.EPOLLOUT != 0 && !lc.detached && lc.upstream != nil {
		lc.upstream.disarmIfDone()
	}
}

// readConnect reads the first packet and authenticates it: from the
// cache at once, or on a goroutine.
func (lc *loopConn) readConnect() {
	c := lc.c
	f, err := c.cr.ReadFrame()
	if err == packetcodec.ErrWouldBlock {
		lc.clientReady = false
		return
	}
	cp := c.firstPacket(f, err)
	if cp == nil {
		lc.closeHandshake()
		return
	}
	lc.cp = cp
	method, data, id, r := c.authStart(cp)
	if r != nil {
		lc.refuseHandshake(*r)
		return
	}
	if id == nil {
		if id = c.verifyCached(method, data); id == nil {
			lc.phase = phaseVerify
			lc.hsTimer.Stop() // verify has its own deadline
			go lc.verifyOffLoop(method, data)
			return
		}
	}
	lc.authenticated(id)
}

// verifyOffLoop verifies a token the cache does not hold, then carries on
// the handshake's next (non-blocking) steps under lc.mu.
func (lc *loopConn) verifyOffLoop(method string, data []byte) {
	c := lc.c
	id, err := c.verify(lc.ctx, method, data)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if e := c.pending(); e != nil {
		// Stopped meanwhile; the connection stayed counted (Shutdown
		// waits for this goroutine, as for a blocking handshake's).
		c.stoppedInHandshake(*e)
		lc.closeHandshake()
		return
	}
	if lc.detached {
		return
	}
	if err != nil {
		lc.refuseHandshake(authRefusal(err))
		return
	}
	lc.authenticated(id)
}

// authenticated admits the identity and dials the broker.
func (lc *loopConn) authenticated(id *authz.Identity) {
	c := lc.c
	if r := c.admit(lc.cp, id); r != nil {
		lc.refuseHandshake(*r)
		return
	}
	if e := c.pending(); e != nil {
		// Stopped while authenticating: do not dial (connectUpstream).
		c.stoppedInHandshake(*e)
		lc.closeHandshake()
		return
	}
	lc.id = id
	lc.phase = phaseDial
	lc.dialPause = 100 * time.Microsecond
	lc.armHandshake(c.srv.cfg.Upstream.DialTimeout) // dial and CONNACK
	lc.dial()
}

// dial starts a non-blocking connect to the broker. A Unix socket whose
// accept queue is full refuses it with EAGAIN; as DialUpstream does, the
// dial is retried with a growing pause until the dial timeout.
func (lc *loopConn) dial() {
	c := lc.c
	t := c.srv.native
	sa := t.sockaddr()
	fd, err := unix.Socket(t.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		lc.dialFailed(os.NewSyscallError("socket", err))
		return
	}
	if t.family != unix.AF_UNIX {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if t.keepAlive > 0 {
			setKeepAlive(fd, t.keepAlive)
		}
	}
	err = unix.Connect(fd, sa)
	switch {
	case err == nil, err == unix.EINPROGRESS:
	case err == unix.EAGAIN && t.family == unix.AF_UNIX:
		unix.Close(fd)
		lc.dialFull = true
		pause := lc.dialPause
		lc.dialPause = min(2*pause, 10*time.Millisecond)
		lc.redial = time.AfterFunc(pause, func() {
			lc.mu.Lock()
			defer lc.mu.Unlock()
			if !lc.detached && lc.phase == phaseDial {
				lc.dial()
			}
		})
		return
	default:
		unix.Close(fd)
		lc.dialFailed(os.NewSyscallError("connect", err))
		return
	}
	// The local address is left unknown (zero): nothing asks for it.
	var local net.Addr = &net.TCPAddr{}
	if t.family == unix.AF_UNIX {
		local = &net.UnixAddr{Net: "unix"}
	}
	us := &rawSock{fd: fd, local: local, remote: t.addr}
	lc.upstream = us
	lc.maxSize = c.useUpstream(us, lc.cp)
	c.ur.SetNonblocking(us)
	c.uw.SetStream(us)
	events := uint32(loopEvents)
	if err != nil { // in progress: writable once connected
		events |= unix.EPOLLOUT
	}
	if err := lc.l.register(lc, sideUpstream, us, events); err != nil {
		lc.dialFailed(err)
		return
	}
	if events&unix.EPOLLOUT == 0 {
		lc.sendConnect()
	}
}

// dialFailed answers CONNACK 0x88 for a broker that could not be dialled.
func (lc *loopConn) dialFailed(err error) {
	s := lc.c.srv
	s.metrics.upstreamDialErrors.Inc()
	lc.refuseHandshake(upstreamUnavailable(fmt.Errorf("dial upstream %s: %w", s.cfg.Upstream.Address, err)))
}

// connected sends the CONNECT once a connect in progress has succeeded.
func (lc *loopConn) connected() {
	if soErr, err := unix.GetsockoptInt(lc.upstream.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soErr != 0 {
		if err == nil {
			err = os.NewSyscallError("connect", unix.Errno(soErr))
		}
		lc.dialFailed(err)
		return
	}
	lc.sendConnect()
}

// sendConnect sends the CONNECT on the connected broker socket.
func (lc *loopConn) sendConnect() {
	c := lc.c
	lc.phase = phaseConnack
	if err := c.writeUpstreamConnect(lc.cp, lc.id, lc.maxSize); err != nil {
		lc.refuseHandshake(upstreamUnavailable(fmt.Errorf("send CONNECT upstream: %w", err)))
		return
	}
	if lc.upstreamReady {
		lc.readConnack()
	}
}

// readConnack reads the broker's answer and, if it accepted, relays it
// and starts relaying.
func (lc *loopConn) readConnack() {
	c := lc.c
	if err := c.uw.Flush(); err != nil {
		lc.refuseHandshake(upstreamUnavailable(fmt.Errorf("send CONNECT upstream: %w", err)))
		return
	}
	f, err := c.ur.ReadFrame()
	if err == packetcodec.ErrWouldBlock {
		lc.upstreamReady = false
		return
	}
	if err != nil {
		lc.refuseHandshake(upstreamUnavailable(fmt.Errorf("read CONNACK from upstream: %w", err)))
		return
	}
	c.srv.metrics.packet(dirFromUpstream, f.Type)
	connack, err := parseConnack(f)
	if err != nil {
		lc.refuseHandshake(upstreamUnavailable(fmt.Errorf("read CONNACK from upstream: %w", err)))
		return
	}
	if r := upstreamRefusal(connack); r != nil {
		lc.refuseHandshake(*r)
		return
	}
	c.adoptClientID(connack, lc.cp)
	// A stop from here on ends a relaying connection, with DISCONNECT.
	if pending := c.claimConnack(true); pending != nil {
		// The broker accepted a session the client will never hear of:
		// end it as the stop asks (connectUpstream does the same), off
		// the loop, since that write may wait.
		lc.leave()
		go func() {
			if pending.upstreamClean {
				c.disconnectUpstream()
			}
			c.stoppedInHandshake(*pending)
			c.closeNative()
		}()
		return
	}
	c.relayConnack(connack, lc.cp)
	lc.watchClient()
	c.established()
	lc.phase = phaseRelay
	lc.hsTimer.Stop()
	lc.cp, lc.id = nil, nil
	lc.lastRead = time.Now()
	lc.startLocked()
}

// armHandshake (re)arms the handshake's timer to fire after d. lc.mu is
// held.
func (lc *loopConn) armHandshake(d time.Duration) {
	lc.hsDeadline = time.Now().Add(d)
	if lc.hsTimer == nil {
		lc.hsTimer = time.AfterFunc(d, lc.onTimer)
		return
	}
	lc.hsTimer.Reset(d)
}

// onTimer serves a native connection's one timer: the handshake's
// timeouts, then, once relaying, the keep alive (startLocked).
func (lc *loopConn) onTimer() {
	lc.mu.Lock()
	if lc.phase != phaseRelay {
		lc.handshakeTimeout()
		lc.mu.Unlock()
		return
	}
	limit := lc.kaLimit
	lc.mu.Unlock()
	if limit > 0 {
		lc.checkKeepAlive(limit)
	}
}

// handshakeTimeout ends a handshake that took too long: no CONNECT within
// the connect timeout, or no connection to the broker or no CONNACK from
// it within the dial timeout. lc.mu is held.
func (lc *loopConn) handshakeTimeout() {
	if lc.detached || lc.phase == phaseVerify || time.Now().Before(lc.hsDeadline) {
		// A callback that began before the timer was re-armed for the
		// next phase, which the re-armed timer times.
		return
	}
	c := lc.c
	switch lc.phase {
	case phaseConnect:
		c.srv.metrics.connects.WithLabelValues(resultNoConnect).Inc()
		c.debug("no connect", "err", os.ErrDeadlineExceeded)
		lc.closeHandshake()
	case phaseDial:
		err := fmt.Errorf("dial upstream %s: %w", c.srv.cfg.Upstream.Address, context.DeadlineExceeded)
		if lc.dialFull {
			err = fmt.Errorf("%w (the broker's accept queue stayed full)", err)
		}
		c.srv.metrics.upstreamDialErrors.Inc()
		lc.refuseHandshake(upstreamUnavailable(err))
	case phaseConnack:
		lc.refuseHandshake(upstreamUnavailable(fmt.Errorf("read CONNACK from upstream: %w", context.DeadlineExceeded)))
	}
}

// abortHandshake carries out a stop requested during the handshake (stop
// has closed the client socket). While a token is verified, the verifying
// goroutine finishes the job when Verify returns. Once the CONNECT is with
// the broker, the CONNACK (or its timeout) does, as connectUpstream does: a
// session the broker accepts must be ended as the stop says.
func (lc *loopConn) abortHandshake() {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.detached || lc.phase == phaseRelay || lc.phase == phaseVerify || lc.phase == phaseConnack {
		return // the CONNACK, its timeout or the verification carries it out
	}
	if e := lc.c.pending(); e != nil {
		lc.c.stoppedInHandshake(*e)
	}
	lc.closeHandshake()
}

// refuseHandshake answers the client with r's CONNACK and closes. The
// answer goes out without waiting if the socket takes it, as it nearly
// always does; a client that does not read (a CONNACK naming a long Will
// topic may not fit) is waited for, up to finalWriteTimeout, on a goroutine:
// never on the loop.
func (lc *loopConn) refuseHandshake(r refusal) {
	c := lc.c
	c.queueRefusal(r)
	_ = c.cw.Flush() // still the loop's: refuses what it cannot take now
	left, _ := c.cw.Backlog()
	lc.leave()
	if !left {
		c.recordRefusal(r)
		c.closeNative()
		return
	}
	go func() {
		c.sendRefusal(r)
		c.closeNative()
	}()
}

// leave takes the connection off the loop; its sockets then block, with
// a write deadline, for the final answers. lc.mu is held.
func (lc *loopConn) leave() {
	if lc.hsTimer != nil {
		lc.hsTimer.Stop()
	}
	if lc.redial != nil {
		lc.redial.Stop()
	}
	lc.detachLocked()
}

// closeHandshake closes a connection that never relayed. lc.mu is held.
func (lc *loopConn) closeHandshake() {
	lc.leave()
	lc.c.closeNative()
}

// releaseForFinalWrite makes a socket the loop owns wait for room, with a
// deadline, so a final answer is not refused; other sockets wait anyway.
func releaseForFinalWrite(nc net.Conn) {
	if rs, ok := nc.(*rawSock); ok {
		rs.release()
	}
}
