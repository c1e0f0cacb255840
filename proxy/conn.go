package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy/audit"
)

// Connection states. A connection only moves forward.
const (
	stateHandshake int32 = iota // awaiting CONNECT, authenticating, dialling
	stateRelay                  // both pumps running
	stateEnding                 // finish has run
)

// noDisconnect as ending.clientCode means: close the client socket without
// sending DISCONNECT (the client left, or it already got the broker's).
const noDisconnect = -1

// codeServerUnavailable (0x88) is a CONNACK code in MQTT v5; SPEC 4 uses it
// in DISCONNECT too when the upstream broker dies, so clients see one code for
// "the broker behind the proxy is gone".
const codeServerUnavailable = 0x88

// finalWriteTimeout bounds the last DISCONNECT written to a peer that may
// have stopped reading.
const finalWriteTimeout = time.Second

// ending says how a connection ends: what the client is told, whether the
// broker gets a clean DISCONNECT (discarding the Will) or a dropped socket
// (publishing it), and why, for logs, audit and metrics.
type ending struct {
	cause         string // bounded label: client_disconnect, client_closed, ...
	clientCode    int    // DISCONNECT reason code for the client, or noDisconnect
	reason        string // Reason String for the client's DISCONNECT
	upstreamClean bool   // send DISCONNECT 0x00 upstream before closing
	err           error  // underlying error, logged at debug level
}

func endShutdown() ending {
	return ending{cause: "shutdown", clientCode: packets.DisconnectServerShuttingDown, upstreamClean: true}
}

// session is the identity a connection currently acts as; replaced as a whole
// on re-authentication so the pumps read it with one atomic load.
type session struct {
	id       *authz.Identity
	grants   Grants
	deadline time.Time // exp + skew; zero for anonymous
	gen      uint64    // unique per session (sessionGen), never 0
	// epoch is the Server's policyEpoch read before grants were compiled:
	// a session older than the current epoch may hold a replaced policy's
	// grants.
	epoch uint64
	// clientID is the client id the grants were compiled for
	// (${client.clientId}); the broker may assign another (isolation off).
	clientID string
}

// sessionGen numbers sessions, so that a decisionCache can tell them apart
// without keeping a replaced one (and its grants) alive.
var sessionGen atomic.Uint64

// conn is one client connection and its upstream connection.
type conn struct {
	srv   *Server
	nc    net.Conn
	cr    *packetcodec.Reader
	cw    *packetcodec.Writer
	up    net.Conn
	ur    *packetcodec.Reader
	uw    *packetcodec.Writer
	state atomic.Int32
	// logger is made on first use (log) and dropped as the handshake
	// learns the client id and principal (logChanged).
	logger atomic.Pointer[slog.Logger]

	// Set during the handshake, read-only afterwards.
	clientID    string // as the client knows it (assigned if it sent none)
	upstreamID  string // as the broker knows it (SPEC 3.5)
	method      string // Authentication Method, "" for anonymous
	problemInfo bool   // Request Problem Information: true unless the CONNECT set 0 (set as it decodes)
	// clientMaxPacket is the client's Maximum Packet Size; 0 if it set none.
	clientMaxPacket uint32
	keepAlive       time.Duration
	aliasMax        uint16

	sess atomic.Pointer[session]
	// overLimit: admitted over limits.maxConnections, to be answered
	// CONNACK 0x97 (set before the connection is served, then read-only).
	overLimit bool
	// clientLeft is set when the client sent DISCONNECT; it then decides
	// how the connection ends, whatever the broker does next.
	clientLeft atomic.Pointer[ending]

	// authName is the verified token's authentication name, set by the
	// handshake before it admits the connection (principal).
	authName string

	// Owned by the client pump.
	// readAt is when the client pump (or the loop) began the read that
	// the packet it handles came in, and upWrittenAt no later than the
	// last packet it sent the broker, both monoNanos: the keep-alive owed
	// upstream when the proxy answers the client itself
	// (keepUpstreamAlive). Integers: toUpstream copies one per packet.
	readAt, upWrittenAt int64
	aliases             map[uint16]string // the client's topic aliases
	aliasBytes          int               // what aliases holds (aliasCost)
	scratch             []byte
	lastKADeadline      time.Time
	// kaTimer, if set, enforces the keep-alive (watchKeepAlive); it is set
	// before the pumps start. kaWaitSince is when the client pump began
	// waiting for the client (its readAt), 0 while it handles a packet.
	kaTimer     *time.Timer
	kaWaitSince atomic.Int64
	lastPublish decisionCache

	// Owned by the upstream pump.
	lastReceive decisionCache

	// upMaxPacket is the broker's Maximum Packet Size (the protocol's
	// when it sets none): set before relaying, then read-only.
	upMaxPacket int
	// pingsOwed counts the proxy's own PINGREQs whose PINGRESP has not
	// come back (keepUpstreamAlive): written by the client pump, taken by
	// the upstream pump.
	pingsOwed atomic.Int32

	mu               sync.Mutex
	subs             map[string]subState          // live subscription filters (SPEC 3.6)
	subsBytes        int                          // what subs holds (subscriptionCost)
	subSeq           uint32                       // the last pendingSubscribe.seq
	pendingSubs      map[uint16]*pendingSubscribe // forwarded SUBSCRIBEs awaiting SUBACK
	pendingSubsBytes int                          // what pendingSubs holds (pendingSubscribe.cost)
	localPubrec      map[uint16]struct{}          // broker→client QoS 2 the proxy acknowledged itself
	expiry           *time.Timer
	reauthBusy       bool
	ending           bool // finish has begun
	// A stop requested during the handshake: before the CONNACK is on
	// its way it closes the socket; after, the client has been told it
	// is connected, so relay carries the stop out with a DISCONNECT.
	pendingStop *ending
	connackSent bool

	// loop is the connection's event loop membership, if its relay runs
	// on one (set under mu).
	loop *loopConn
	// native: the connection lives on its loop from accept (set before
	// it is admitted, then read-only); no goroutine serves it, so it is
	// counted out by closeNative, and Serve stops it when its context ends
	// (stopNative).
	native      bool
	releaseOnce sync.Once

	bg sync.WaitGroup // re-authentication checks and stop requests in flight
	// bgActive counts bg's members too, for a loop that must not wait on
	// bg to know whether it would (endOnLoop).
	bgActive atomic.Int32
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		srv: s,
		nc:  nc,
		cr:  packetcodec.NewReader(nc, s.cfg.Limits.MaxPacketSize),
		cw:  packetcodec.NewWriter(nc),
	}
	return c
}

// log returns the connection's logger, made on first use: slog's With
// formats its attributes at once, and most connections never log (debug
// lines are off by default), so it is not paid per CONNECT (issue 5). It
// names the client id and principal known when it is made; the handshake
// drops it (logChanged) as they become known.
func (c *conn) log() *slog.Logger {
	if l := c.logger.Load(); l != nil {
		return l
	}
	attrs := []any{"remote", c.nc.RemoteAddr().String()}
	if c.clientID != "" {
		attrs = append(attrs, "client_id", c.clientID)
	}
	if p := c.principal(); p != "" {
		attrs = append(attrs, "principal", p)
	}
	l := c.srv.log.With(attrs...)
	c.logger.CompareAndSwap(nil, l)
	return c.logger.Load()
}

// principal is the connection's authentication name: its session's, or,
// for a CONNECT refused after its token was verified (a client id another
// principal owns, say), the verified one's; "" before.
func (c *conn) principal() string {
	if s := c.sess.Load(); s != nil && s.id != nil {
		return s.id.AuthenticationName
	}
	return c.authName
}

// logChanged makes the next log line name the client id and principal as
// they are now (handshake only).
func (c *conn) logChanged() { c.logger.Store(nil) }

// debug logs at debug level, making the logger only if that is on.
func (c *conn) debug(msg string, args ...any) {
	if c.srv.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log().Debug(msg, args...)
	}
}

// serve runs the connection's state machine to its end.
func (c *conn) serve(ctx context.Context) {
	m := c.srv.metrics
	m.active.Inc()
	defer m.active.Dec()
	defer c.nc.Close()
	defer c.releaseReaders()
	if !c.handshake(ctx) {
		return
	}
	defer c.up.Close()
	c.relay(ctx)
}

// releaseReaders gives the read buffers back once serve no longer reads
// (nor does the upstream pump, which relay waits for).
func (c *conn) releaseReaders() {
	c.cr.Close()
	if c.ur != nil {
		c.ur.Close()
	}
}

// relay forwards until the peers, the expiry timer, re-authentication, a
// policy re-check or shutdown end the connection. Plain sockets on Linux
// are relayed by an event loop (loop_linux.go) while this goroutine waits;
// other streams (TLS, WebSocket) by two pumps: the client pump on the
// connection's own goroutine and the upstream pump on a second one.
// Whoever ends the connection first calls finish; finish closes both
// sockets, which ends the other pump.
func (c *conn) relay(ctx context.Context) {
	unhook := context.AfterFunc(ctx, func() { c.stop(endShutdown()) })
	defer unhook()
	if pending := c.pending(); pending != nil {
		c.stop(*pending)
	}
	if lc := c.attachToLoop(); lc != nil {
		<-lc.ended
	} else {
		c.cr.SetOnWait(c.flushBoth)
		c.ur.SetOnWait(c.flushBoth)
		if rc, ok := c.nc.(interface{ ReadDeadlineCloses() bool }); ok && rc.ReadDeadlineCloses() && c.keepAlive > 0 {
			c.watchKeepAlive()
			defer c.kaTimer.Stop()
		}
		upDone := make(chan struct{})
		go func() {
			defer close(upDone)
			c.finish(c.upstreamPump())
		}()
		c.finish(c.clientPump())
		<-upDone
	}
	c.bg.Wait()
	c.mu.Lock()
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.mu.Unlock()
}

// stop asks the connection to end with e; the first ending wins. During the
// handshake there is nothing to tell anybody yet, so the socket is closed.
// finish runs on its own goroutine (owned by c.bg) because it writes to the
// peers with a deadline and callers (timers, Shutdown, policy re-checks)
// must not wait for a slow client.
func (c *conn) stop(e ending) {
	// Checked under mu, which finish and the handshake's last steps also
	// take: once finish has begun no Add can race relay's final bg.Wait,
	// and no stop falls between CONNACK and relaying.
	c.mu.Lock()
	if c.state.Load() == stateHandshake {
		if c.pendingStop == nil {
			c.pendingStop = &e
		}
		sent := c.connackSent
		c.mu.Unlock()
		if !sent {
			c.nc.Close()
		} else {
			// The CONNACK may be stuck on a client that does not read:
			// give it as long as the final DISCONNECT gets.
			_ = c.nc.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
		}
		if c.native {
			c.loop.abortHandshake()
		}
		return
	}
	if c.ending {
		c.mu.Unlock()
		return
	}
	c.bgAdd()
	c.mu.Unlock()
	go func() {
		ended := c.finish(e)
		c.bgDone()
		if ended && c.native {
			// What relay and serve do after finish for the others.
			c.bg.Wait()
			c.closeNative()
		}
	}()
}

// bgAdd and bgDone count a goroutine of the connection in and out.
func (c *conn) bgAdd() {
	c.bgActive.Add(1)
	c.bg.Add(1)
}

func (c *conn) bgDone() {
	c.bgActive.Add(-1)
	c.bg.Done()
}

// closeNative releases what a native connection holds and counts it out,
// once; the sockets are closed (finish did, or the handshake ended).
func (c *conn) closeNative() {
	c.releaseOnce.Do(func() {
		c.mu.Lock()
		if c.expiry != nil {
			c.expiry.Stop()
		}
		up := c.up
		c.mu.Unlock()
		c.nc.Close()
		if up != nil {
			up.Close()
		}
		c.releaseReaders()
		c.srv.metrics.active.Dec()
		c.srv.forget(c)
	})
}

// forceClose closes both sockets without writing anything.
func (c *conn) forceClose() {
	c.mu.Lock()
	nc, up := c.nc, c.up
	c.mu.Unlock()
	nc.Close()
	if up != nil {
		up.Close()
	}
}

// finish tells the client and the broker what e says and closes both
// sockets. It reports whether this call did it: the first one does, the
// others return at once.
func (c *conn) finish(e ending) bool {
	lc, ok := c.claimEnd()
	if !ok {
		return false
	}
	if lc != nil {
		// Off the loop first: from here the sockets are this
		// goroutine's, and its writes wait (up to the deadlines).
		lc.detach()
		if lc.ended != nil {
			defer close(lc.ended)
		}
	}
	e = c.finalEnding(e)
	// Before queueing: a pump stuck writing to a peer that stopped reading
	// holds its Writer's lock, which queueFinal needs; the deadline ends
	// that write (a deadline also cuts a write in progress).
	c.armFinalDeadlines()
	c.queueFinal(e)
	c.flushFinal()
	c.closeEnded(e)
	return true
}

// claimEnd makes the caller the one who ends the connection, unless
// somebody already is; it returns the connection's loop membership, if any.
// Under mu, with stop's check: once claimed, no stop starts a goroutine.
func (c *conn) claimEnd() (*loopConn, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ending {
		return nil, false
	}
	c.ending = true
	return c.loop, true
}

// finalEnding is how the connection ends: as e says, unless the client
// left first with DISCONNECT, which then decides.
func (c *conn) finalEnding(e ending) ending {
	c.state.Store(stateEnding)
	if left := c.clientLeft.Load(); left != nil {
		return *left
	}
	return e
}

// queueFinal queues the DISCONNECTs e sends: to the client, with e's code,
// and to the broker, 0x00 (which discards the Will) when e ends the broker
// session cleanly. Without DISCONNECT the broker treats the close as a
// lost connection and publishes the Will [MQTT-3.1.2-8].
func (c *conn) queueFinal(e ending) {
	if e.clientCode != noDisconnect {
		d := &packets.Disconnect{ReasonCode: byte(e.clientCode), Properties: &packets.Properties{}}
		d.Properties.ReasonString = c.reasonString(e.reason, 0)
		_ = c.cw.WritePacket(d)
	}
	if e.upstreamClean {
		c.queueUpstreamDisconnect()
	}
}

// queueUpstreamDisconnect queues DISCONNECT 0x00 for the broker, which
// ends its session and discards the Will.
func (c *conn) queueUpstreamDisconnect() {
	_ = c.uw.WritePacket(&packets.Disconnect{ReasonCode: packets.DisconnectNormalDisconnection, Properties: &packets.Properties{}})
}

// flushFinal writes out what each peer is still owed (forwarded packets,
// the final DISCONNECTs), waiting at most finalWriteTimeout for each.
func (c *conn) flushFinal() {
	_ = c.nc.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
	_ = c.cw.Flush()
	_ = c.up.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
	_ = c.uw.Flush()
}

// armFinalDeadlines gives writes to either peer finalWriteTimeout from now.
func (c *conn) armFinalDeadlines() {
	_ = c.nc.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
	_ = c.up.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
}

// closeEnded closes both sockets and records how the connection ended.
func (c *conn) closeEnded(e ending) {
	c.nc.Close()
	c.up.Close()
	c.srv.metrics.disconnects.WithLabelValues(e.cause).Inc()
	attrs := []any{"cause", e.cause}
	if e.clientCode != noDisconnect {
		attrs = append(attrs, "reason_code", e.clientCode)
	}
	if e.reason != "" {
		attrs = append(attrs, "reason", e.reason)
	}
	if e.err != nil {
		attrs = append(attrs, "err", e.err)
	}
	c.debug("connection ended", attrs...)
	c.auditEvent("disconnect", e.cause, "", "", e.reason, "")
}

// disconnectUpstream ends the broker session with DISCONNECT 0x00, which
// discards the Will, within finalWriteTimeout.
func (c *conn) disconnectUpstream() {
	c.queueUpstreamDisconnect()
	_ = c.up.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
	_ = c.uw.Flush()
}

// readEnding turns an error from reading the client into an ending.
func clientReadEnding(err error) ending {
	var pe *packetcodec.Error
	switch {
	case errors.Is(err, io.EOF):
		return ending{cause: "client_closed", clientCode: noDisconnect}
	case errors.As(err, &pe):
		return ending{cause: "client_protocol_error", clientCode: int(pe.Code), reason: pe.Reason, err: err}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ending{cause: "keep_alive_timeout", clientCode: packets.DisconnectKeepAliveTimeout, reason: "keep alive timeout", err: err}
	}
	return ending{cause: "client_closed", clientCode: noDisconnect, err: err}
}

// upstreamLost is how a connection ends when the broker goes away: the client
// is told the server is unavailable (SPEC 4 keep-alive).
func upstreamLost(err error) ending {
	return ending{cause: "upstream_closed", clientCode: codeServerUnavailable, reason: "upstream broker connection lost", err: err}
}

// clientWriteFailed ends a connection whose client socket failed.
func clientWriteFailed(err error) ending {
	return ending{cause: "client_closed", clientCode: noDisconnect, err: err}
}

// protocolError ends a connection for a client's protocol violation.
func protocolError(reason string) ending {
	return ending{cause: "client_protocol_error", clientCode: packets.DisconnectProtocolError, reason: reason}
}

// refreshKeepAlive extends the client's read deadline to 1.5 × keep alive
// [MQTT-3.1.2-22]. It is re-armed at most every quarter period so the hot
// path does not pay for a deadline update per packet.
func (c *conn) refreshKeepAlive() {
	if c.keepAlive == 0 {
		return
	}
	now := time.Now()
	c.readAt = int64(now.Sub(clockBase))
	if c.kaTimer != nil {
		c.kaWaitSince.Store(c.readAt)
		return
	}
	if now.Sub(c.lastKADeadline) < c.keepAlive/4 {
		return
	}
	c.lastKADeadline = now
	_ = c.nc.SetReadDeadline(now.Add(c.keepAlive * 3 / 2))
}

// clockBase is the origin of monoNanos.
var clockBase = time.Now()

// monoNanos is the monotonic clock in nanoseconds since clockBase.
func monoNanos() int64 { return int64(time.Since(clockBase)) }

// watchKeepAlive enforces the client's keep-alive with a timer instead of
// read deadlines, on a connection where a read deadline that expires
// closes the connection (WebSocket): the client must get its DISCONNECT
// 0x8D. The client pump says when it waits for the client (kaWaitSince);
// silence is a wait of 1.5 × keep alive.
func (c *conn) watchKeepAlive() {
	limit := c.keepAlive * 3 / 2
	c.kaTimer = time.AfterFunc(math.MaxInt64, func() {
		if c.state.Load() == stateEnding {
			return // a Reset racing relay's Stop would otherwise re-arm it for good
		}
		since := c.kaWaitSince.Load()
		if since == 0 { // handling a packet, or held up by the broker: not silent
			c.kaTimer.Reset(limit)
			return
		}
		if idle := time.Duration(monoNanos() - since); idle < limit {
			c.kaTimer.Reset(limit - idle)
			return
		}
		c.stop(clientReadEnding(os.ErrDeadlineExceeded))
	})
	c.kaTimer.Reset(limit) // after the assignment the callback reads
}

// maxReasonString bounds the reason strings the proxy writes. They quote
// topics and filters, each up to 65,535 bytes; whole, they could make an
// answer the encoder refuses (a property string is at most 65,535 bytes),
// and the client would be dropped without it.
const maxReasonString = 512

// fixedAnswerSize bounds the bytes of a packet the proxy makes besides its
// Reason String and the variable parts its callers count (reason codes,
// Authentication Method): fixed header, packet id, reason code, property
// lengths and identifiers.
const fixedAnswerSize = 24

// reasonString is s as the Reason String of a packet the proxy makes, with
// other bytes of variable parts besides: "" if the client asked for no
// problem information; cut (at a rune boundary, marked "…") to
// maxReasonString and to what the client's Maximum Packet Size leaves, as
// a server must not exceed it and may drop the Reason String to fit
// [MQTT-3.1.2-25, MQTT-3.4.2-2].
func (c *conn) reasonString(s string, other int) string {
	if !c.problemInfo || s == "" {
		return ""
	}
	limit := maxReasonString
	if m := c.clientMaxPacket; m != 0 {
		limit = min(limit, int(m)-fixedAnswerSize-other)
	}
	if len(s) <= limit {
		return s
	}
	const mark = "…"
	if limit < len(mark)+1 {
		return ""
	}
	cut := limit - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// auditEvent writes one audit line with the fixed schema of STYLE 30.
func (c *conn) auditEvent(event, operation, topic, decision, reason, rule string) {
	c.srv.audit.Log(audit.Event{Event: event, Principal: c.principal(), ClientID: c.clientID, Operation: operation,
		Topic: topic, Decision: decision, Reason: reason, Rule: rule})
}
