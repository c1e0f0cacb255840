package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
	"github.com/mqtt-authproxy/mqtt-authproxy/test/syncbuf"
)

// These tests drive connections that live on the loop from accept
// (native_linux.go) against a scripted broker; test/ runs every end-to-end
// test through the same path against a real Mosquitto.

// scriptedBroker accepts on ln and answers each CONNECT with a CONNACK of
// code, after delay; it reports each connection's packets on got.
type scriptedBroker struct {
	ln    net.Listener
	code  byte
	delay time.Duration
	got   chan []byte // packet types received per connection, when it ends
	// onPing, if set, is called as a PINGREQ arrives, before the answer.
	onPing atomic.Pointer[func()]
	// assigned, if set, is the Assigned Client Identifier of each CONNACK.
	assigned atomic.Pointer[string]
}

// listenLoopback listens on an ephemeral loopback TCP port, or on a Unix
// socket named name in a temporary directory.
func listenLoopback(t *testing.T, network, name string) net.Listener {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), name)
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func startBroker(t *testing.T, network string, code byte, delay time.Duration) *scriptedBroker {
	t.Helper()
	ln := listenLoopback(t, network, "broker.sock")
	b := &scriptedBroker{ln: ln, code: code, delay: delay, got: make(chan []byte, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return b
}

func (b *scriptedBroker) serve(c net.Conn) {
	defer c.Close()
	var types []byte
	defer func() { b.got <- types }()
	// The proxy's codec, not paho's ReadPacket, which reads the two-byte
	// DISCONNECT e0 00 as io.EOF.
	r := packetcodec.NewReader(c, 1<<20)
	defer r.Close()
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		p, err := r.ReadFrame()
		if err != nil {
			return
		}
		types = append(types, p.Type)
		if p.Type == packets.PINGREQ {
			if f := b.onPing.Load(); f != nil {
				(*f)()
			}
			if _, err := packets.NewControlPacket(packets.PINGRESP).WriteTo(c); err != nil {
				return
			}
		}
		if p.Type == packets.CONNECT {
			time.Sleep(b.delay)
			ack := packets.NewControlPacket(packets.CONNACK)
			ack.Content.(*packets.Connack).ReasonCode = b.code
			if id := b.assigned.Load(); id != nil {
				ack.Content.(*packets.Connack).Properties = &packets.Properties{AssignedClientID: *id}
			}
			if _, err := ack.WriteTo(c); err != nil {
				return
			}
		}
	}
}

// upstreamAddress is the proxy's upstream.address for b.
func (b *scriptedBroker) upstreamAddress() string {
	if b.ln.Addr().Network() == "unix" {
		return "unix:" + b.ln.Addr().String()
	}
	return b.ln.Addr().String()
}

// serveNativeProxy serves a proxy admitting anonymous clients on a new
// listener of network, towards upstream; it shuts down when the test ends.
func serveNativeProxy(t *testing.T, network, upstream string, tweak func(*Config)) (*Server, net.Addr) {
	t.Helper()
	return serveNativeProxyWith(t, network, upstream, tweak, Options{})
}

// serveNativeProxyWith is serveNativeProxy with opts (anonymous clients
// admitted, Go's dialer).
func serveNativeProxyWith(t *testing.T, network, upstream string, tweak func(*Config), opts Options) (*Server, net.Addr) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Upstream.Address = upstream
	cfg.Upstream.DialTimeout = 2 * time.Second
	if tweak != nil {
		tweak(&cfg)
	}
	opts.AllowAnonymous, opts.Dialer = true, &net.Dialer{}
	srv, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if srv.native.sa == nil {
		t.Fatalf("upstream %q does not qualify for native connections", upstream)
	}
	ln := listenLoopback(t, network, "proxy.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv, ln.Addr()
}

// connectClient dials addr, sends an anonymous CONNECT and returns the
// connection and the CONNACK.
func connectClient(t *testing.T, addr net.Addr) (net.Conn, *packets.Connack) {
	t.Helper()
	return connectClientKeepAlive(t, addr, 0)
}

// connectClientKeepAlive is connectClient with a Keep Alive of ka seconds.
func connectClientKeepAlive(t *testing.T, addr net.Addr, ka uint16) (net.Conn, *packets.Connack) {
	t.Helper()
	c, ack, err := dialConnect(addr, ka)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	if err != nil {
		t.Fatal(err)
	}
	return c, ack
}

// dialConnect is connectClientKeepAlive for any goroutine: it reports
// failures instead of ending the test.
func dialConnect(addr net.Addr, ka uint16) (net.Conn, *packets.Connack, error) {
	c, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		return nil, nil, err
	}
	cp := packets.NewControlPacket(packets.CONNECT)
	cp.Content.(*packets.Connect).ClientID = "c1"
	cp.Content.(*packets.Connect).ProtocolName = "MQTT"
	cp.Content.(*packets.Connect).ProtocolVersion = 5
	cp.Content.(*packets.Connect).CleanStart = true
	cp.Content.(*packets.Connect).KeepAlive = ka
	if _, err := cp.WriteTo(c); err != nil {
		return c, nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := packets.ReadPacket(c)
	if err != nil {
		return c, nil, fmt.Errorf("read CONNACK: %w", err)
	}
	ack, ok := p.Content.(*packets.Connack)
	if !ok {
		return c, nil, fmt.Errorf("got %s, want CONNACK", p.PacketType())
	}
	return c, ack, nil
}

// waitForCount waits until srv serves want connections.
func waitForCount(t *testing.T, srv *Server, want int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); srv.ConnectionCount() != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections, want %d", srv.ConnectionCount(), want)
		}
	}
}

// onlyConn returns srv's one connection.
func onlyConn(t *testing.T, srv *Server) *conn {
	t.Helper()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for c := range srv.conns {
		return c
	}
	t.Fatal("no connection")
	return nil
}

func TestNativeConnectRelayAndDisconnect(t *testing.T) {
	for _, tc := range []struct{ listener, broker string }{
		{"tcp", "tcp"}, {"tcp", "unix"}, {"unix", "unix"},
	} {
		t.Run(tc.listener+" to "+tc.broker, func(t *testing.T) {
			b := startBroker(t, tc.broker, packets.ConnackSuccess, 0)
			srv, addr := serveNativeProxy(t, tc.listener, b.upstreamAddress(), nil)
			client, ack := connectClient(t, addr)
			if ack.ReasonCode != packets.ConnackSuccess {
				t.Fatalf("CONNACK 0x%02x, want success", ack.ReasonCode)
			}
			c := onlyConn(t, srv)
			if !c.native {
				t.Fatal("the connection did not live on the loop from accept")
			}
			type option struct {
				level, opt int
				name       string
				want       int
			}
			checkOptions := func(side string, fd int) {
				for _, o := range []option{
					{unix.IPPROTO_TCP, unix.TCP_NODELAY, "TCP_NODELAY", 1},
					{unix.SOL_SOCKET, unix.SO_KEEPALIVE, "SO_KEEPALIVE", 1},
					{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, "TCP_KEEPIDLE", 15},
					{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, "TCP_KEEPINTVL", 15},
					{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, "TCP_KEEPCNT", 9},
				} {
					if v, err := unix.GetsockoptInt(fd, o.level, o.opt); err != nil || v != o.want {
						t.Errorf("%s = %d (%v) on the %s socket, want %d as Go's listener and dialer set", o.name, v, err, side, o.want)
					}
				}
			}
			if tc.listener == "tcp" {
				checkOptions("client", c.nc.(*rawSock).fd)
				// Looked up when first asked (for a log line).
				if got, want := c.nc.RemoteAddr().String(), client.LocalAddr().String(); got != want {
					t.Errorf("remote address %q, want the client's %q", got, want)
				}
			}
			if tc.broker == "tcp" {
				c.mu.Lock()
				up := c.up.(*rawSock)
				c.mu.Unlock()
				checkOptions("broker", up.fd)
			}
			if got := testutil.ToFloat64(srv.metrics.active); got != 1 {
				t.Errorf("active connections gauge = %v, want 1", got)
			}
			d := packets.NewControlPacket(packets.DISCONNECT)
			if _, err := d.WriteTo(client); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-b.got:
				if string(got) != string([]byte{packets.CONNECT, packets.DISCONNECT}) {
					t.Errorf("broker got packet types %v, want CONNECT, DISCONNECT", got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the broker's connection did not end")
			}
			waitForCount(t, srv, 0)
			if got := testutil.ToFloat64(srv.metrics.active); got != 0 {
				t.Errorf("active connections gauge = %v after the end, want 0", got)
			}
		})
	}
}

// TestNativeTCPKeepAlive: an accepted TCP client gets TCP keep-alive
// probes only where its MQTT keep-alive would not find a dead peer first
// (Go's probes find one after 150 s; the proxy ends a client silent for
// 1.5 × its keep alive).
func TestNativeTCPKeepAlive(t *testing.T) {
	b := startBroker(t, "unix", packets.ConnackSuccess, 0)
	srv, addr := serveNativeProxy(t, "tcp", b.upstreamAddress(), nil)
	for _, tc := range []struct {
		keepAlive uint16
		probes    bool
	}{
		{0, true},    // nothing else watches the peer
		{30, false},  // ended after 45 s of silence
		{100, false}, // 150 s: as soon as the probes
		{101, true},  // 151.5 s
		{3600, true}, // 90 minutes
	} {
		client, ack := connectClientKeepAlive(t, addr, tc.keepAlive)
		if ack.ReasonCode != packets.ConnackSuccess {
			t.Fatalf("keep alive %d: CONNACK 0x%02x, want success", tc.keepAlive, ack.ReasonCode)
		}
		fd := onlyConn(t, srv).nc.(*rawSock).fd
		want := map[bool]int{false: 0, true: 1}[tc.probes]
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE); err != nil || v != want {
			t.Errorf("keep alive %d s: SO_KEEPALIVE = %d (%v), want %d", tc.keepAlive, v, err, want)
		}
		if tc.probes {
			for _, o := range []struct {
				opt  int
				name string
				want int
			}{{unix.TCP_KEEPIDLE, "TCP_KEEPIDLE", 15}, {unix.TCP_KEEPINTVL, "TCP_KEEPINTVL", 15}, {unix.TCP_KEEPCNT, "TCP_KEEPCNT", 9}} {
				if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, o.opt); err != nil || v != o.want {
					t.Errorf("keep alive %d s: %s = %d (%v), want %d as Go sets", tc.keepAlive, o.name, v, err, o.want)
				}
			}
		}
		client.Close()
		waitForCount(t, srv, 0)
	}
}

// TestClientDisconnectCause: how a client's DISCONNECT is counted, and
// that it reaches the broker only when well formed.
func TestClientDisconnectCause(t *testing.T) {
	for _, tc := range []struct {
		name       string
		disconnect []byte
		cause      string
		broker     []byte // packet types the broker gets
	}{
		{"two-byte normal", []byte{0xe0, 0x00}, "client_disconnect", []byte{packets.CONNECT, packets.DISCONNECT}},
		{"normal with empty properties", []byte{0xe0, 0x02, 0x00, 0x00}, "client_disconnect", []byte{packets.CONNECT, packets.DISCONNECT}},
		{"with Will (0x04)", []byte{0xe0, 0x01, 0x04}, "client_disconnect_with_reason", []byte{packets.CONNECT, packets.DISCONNECT}},
		// Reason codes are the broker's to judge (SPEC 4 lists what the
		// proxy validates first): forwarded as they are.
		{"unknown reason code", []byte{0xe0, 0x01, 0x03}, "client_disconnect_with_reason", []byte{packets.CONNECT, packets.DISCONNECT}},
		// Not forwarded: the broker's connection ends without DISCONNECT.
		{"truncated properties", []byte{0xe0, 0x02, 0x00, 0x05}, "client_protocol_error", []byte{packets.CONNECT}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t, "unix", packets.ConnackSuccess, 0)
			srv, addr := serveNativeProxy(t, "tcp", b.upstreamAddress(), nil)
			client, _ := connectClient(t, addr)
			if _, err := client.Write(tc.disconnect); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-b.got:
				if string(got) != string(tc.broker) {
					t.Errorf("broker got packet types %v, want %v", got, tc.broker)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the broker's connection did not end")
			}
			waitForCount(t, srv, 0)
			if got := testutil.ToFloat64(srv.metrics.disconnects.WithLabelValues(tc.cause)); got != 1 {
				t.Errorf("disconnects{cause=%q} = %v, want 1", tc.cause, got)
			}
		})
	}
}

// floodPublish is a QoS 0 PUBLISH of 110 bytes, for floods.
func floodPublish(t *testing.T) []byte {
	t.Helper()
	pub := packets.NewControlPacket(packets.PUBLISH)
	pub.Content.(*packets.Publish).Topic = "t/fair"
	pub.Content.(*packets.Publish).Payload = make([]byte, 100)
	var b bytes.Buffer
	if _, err := pub.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestLoopTurnsAreFair: a client sending megabytes of PUBLISHes back to
// back gets a turn's worth read, then another connection on the loop is
// served, instead of waiting for the whole burst.
func TestLoopTurnsAreFair(t *testing.T) {
	// 110-byte PUBLISHes, 5.5 MB: the client keeps writing them while
	// the loop reads (the sockets buffer a fraction).
	const frames = 50000
	// PUBLISHes and the PINGREQ are counted as the loop handles them: as
	// the broker received the PINGREQ, goroutine wake-ups put thousands
	// more PUBLISHes (tens of turns) between the two on a 2-core machine.
	var handled atomic.Int64
	atPing := make(chan int64, 1)
	testHookClientFrame = func(f packetcodec.Frame) {
		switch f.Type {
		case packets.PUBLISH:
			handled.Add(1)
		case packets.PINGREQ:
			atPing <- handled.Load()
		}
	}
	t.Cleanup(func() { testHookClientFrame = nil })
	b := startBroker(t, "unix", packets.ConnackSuccess, 0)
	srv, addr := serveNativeProxy(t, "tcp", b.upstreamAddress(), nil)
	flooder, _ := connectClient(t, addr)
	// The burst waits in the flooder's send buffer, and each read the
	// loop makes pulls more across (loopback TCP sends on the window
	// update), so a loop without turns would read far more than the
	// receive buffer holds before it looked at the other connection.
	if err := flooder.(*net.TCPConn).SetWriteBuffer(8 << 20); err != nil {
		t.Fatal(err)
	}
	lc := onlyConn(t, srv).loop
	other, _ := connectClient(t, addr)
	published := func() float64 { return testutil.ToFloat64(srv.metrics.packets[dirFromClient][packets.PUBLISH]) }

	burst := bytes.Repeat(floodPublish(t), frames)

	// Hold the flooder's connection while its burst and the other's
	// PINGREQ arrive, so both wait for the loop at once.
	lc.mu.Lock()
	wrote := make(chan error, 1)
	go func() {
		_ = flooder.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := flooder.Write(burst)
		wrote <- err
	}()
	time.Sleep(100 * time.Millisecond) // the burst into the socket buffers
	if _, err := packets.NewControlPacket(packets.PINGREQ).WriteTo(other); err != nil {
		lc.mu.Unlock()
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	lc.mu.Unlock()

	_ = other.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := packets.ReadPacket(other)
	if err != nil || p.Type != packets.PINGRESP {
		t.Fatalf("read PINGRESP: %v %v", p, err)
	}
	forwarded := <-atPing
	t.Logf("%v of %d PUBLISHes handled before the other connection's PINGREQ", forwarded, frames)
	// The turn running when the loop got the PINGREQ's edge and one more
	// (the flooder is served again first: it waited), with room to spare.
	frame := len(floodPublish(t))
	if most := int64(4 * turnBudget / frame); forwarded > most {
		t.Errorf("%v of the %d PUBLISHes were handled before the other connection's PINGREQ, want at most 4 turns' worth (%d bytes each: %d)", forwarded, frames, turnBudget, most)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("write the burst: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); published() < frames; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d PUBLISHes handled: the rest of the burst was not served", published(), frames)
		}
	}
}

// A connection that keeps its socket full waits in the loop's list of
// unfinished turns once, not once per event it had meanwhile (which would
// give it many turns per wake). From the stop-11 review.
func TestLoopQueuesAConnectionOnce(t *testing.T) {
	b := startBroker(t, "unix", packets.ConnackSuccess, 0)
	srv, addr := serveNativeProxy(t, "tcp", b.upstreamAddress(), nil)
	flooder, _ := connectClient(t, addr)
	lc := onlyConn(t, srv).loop
	l := lc.l
	chunk := bytes.Repeat(floodPublish(t), 1000)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = flooder.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := flooder.Write(chunk); err != nil {
				return
			}
		}
	}()
	most := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Microsecond) {
		l.mu.Lock()
		n := 0
		for _, q := range l.again {
			if q == lc {
				n++
			}
		}
		l.mu.Unlock()
		most = max(most, n)
	}
	close(stop)
	<-done
	if most > 1 {
		t.Errorf("the flooding connection was queued %d times at once, want at most once", most)
	}
}

func TestNativeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name       string
		upstream   func(t *testing.T) string
		dialTO     time.Duration
		reason     string        // the CONNACK's Reason String, if checked
		dialErrors float64       // upstream dial errors counted
		after      time.Duration // the answer comes after about this
	}{
		{name: "broker refuses", reason: "upstream broker refused the proxy",
			upstream: func(t *testing.T) string {
				return startBroker(t, "unix", packets.ConnackNotAuthorized, 0).upstreamAddress()
			}},
		{name: "no broker", dialErrors: 1,
			upstream: func(t *testing.T) string { return "unix:" + filepath.Join(t.TempDir(), "none.sock") }},
		{name: "broker's TCP accept queue full", dialTO: 300 * time.Millisecond, dialErrors: 1, after: 300 * time.Millisecond,
			upstream: fullTCPListener},
		{name: "broker silent past the dial timeout", dialTO: 200 * time.Millisecond, after: 200 * time.Millisecond,
			upstream: func(t *testing.T) string {
				return startBroker(t, "tcp", packets.ConnackSuccess, 3*time.Second).upstreamAddress()
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, addr := serveNativeProxy(t, "tcp", tc.upstream(t), func(c *Config) {
				if tc.dialTO > 0 {
					c.Upstream.DialTimeout = tc.dialTO
				}
			})
			start := time.Now()
			_, ack := connectClient(t, addr)
			took := time.Since(start)
			if ack.ReasonCode != packets.ConnackServerUnavailable || tc.reason != "" && ack.Properties.ReasonString != tc.reason {
				t.Fatalf("CONNACK 0x%02x %q, want 0x88 %q", ack.ReasonCode, ack.Properties.ReasonString, tc.reason)
			}
			if got := testutil.ToFloat64(srv.metrics.upstreamDialErrors); got != tc.dialErrors {
				t.Errorf("upstream dial errors = %v, want %v", got, tc.dialErrors)
			}
			if took < tc.after*3/4 || took > tc.after+2*time.Second {
				t.Errorf("answered after %v, want about %v", took, tc.after)
			}
			waitForCount(t, srv, 0)
		})
	}
}

func TestNativeConnectTimeout(t *testing.T) {
	b := startBroker(t, "tcp", packets.ConnackSuccess, 0)
	srv, addr := serveNativeProxy(t, "tcp", b.upstreamAddress(), func(c *Config) { c.Limits.ConnectTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitForCount(t, srv, 1)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	n, err := c.Read(make([]byte, 16))
	if ne := (net.Error)(nil); n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read %d bytes, %v: want the connection closed without a reply", n, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("closed after %v, want about the 200 ms connect timeout", took)
	}
	waitForCount(t, srv, 0)
}

// A broker whose accept queue is full refuses a non-blocking Unix connect
// with EAGAIN; the loop retries until it accepts (DialUpstream's rule).
func TestNativeDialWaitsWhileTheUnixAcceptQueueIsFull(t *testing.T) {
	fd, path := fullUnixQueue(t)
	srv, addr := serveNativeProxy(t, "tcp", "unix:"+path, nil)
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		time.Sleep(100 * time.Millisecond)
		for range 2 { // the queued one, then the proxy's
			nfd, _, err := syscall.Accept(fd)
			if err != nil {
				return
			}
			if f := newBrokerConn(nfd); f != nil {
				go serveOne(f, packets.ConnackSuccess)
			}
		}
	}()
	_, ack := connectClient(t, addr)
	if ack.ReasonCode != packets.ConnackSuccess {
		t.Fatalf("CONNACK 0x%02x %q, want success once the broker accepted", ack.ReasonCode, ack.Properties.ReasonString)
	}
	<-accepted
	waitForCount(t, srv, 1)
}

// Several connections waiting for the same full queue are each dialled
// again (the loop's timer serves them all, re-armed for the next due).
func TestNativeDialsWaitTogetherForAFullUnixQueue(t *testing.T) {
	const clients = 5
	fd, path := fullUnixQueue(t)
	srv, addr := serveNativeProxy(t, "tcp", "unix:"+path, nil)
	go func() {
		time.Sleep(150 * time.Millisecond)
		for range clients + 1 { // the queued one, then the proxy's
			nfd, _, err := syscall.Accept(fd)
			if err != nil {
				return
			}
			if f := newBrokerConn(nfd); f != nil {
				go serveOne(f, packets.ConnackSuccess)
			}
		}
	}()
	type result struct {
		c   net.Conn
		ack *packets.Connack
		err error
	}
	results := make(chan result, clients)
	for i := range clients {
		go func() {
			time.Sleep(time.Duration(i) * 10 * time.Millisecond) // due at different times
			c, ack, err := dialConnect(addr, 0)
			results <- result{c, ack, err}
		}()
	}
	for range clients {
		r := <-results
		if r.c != nil {
			defer r.c.Close()
		}
		if r.err != nil {
			t.Error(r.err)
		} else if r.ack.ReasonCode != packets.ConnackSuccess {
			t.Errorf("CONNACK 0x%02x, want success once the broker accepted", r.ack.ReasonCode)
		}
	}
	waitForCount(t, srv, clients)
}

func newBrokerConn(fd int) net.Conn {
	f := os.NewFile(uintptr(fd), "broker")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil
	}
	return c
}

func serveOne(c net.Conn, code byte) {
	b := &scriptedBroker{code: code, got: make(chan []byte, 1)}
	b.serve(c)
}

// Shutdown ends connections in every phase of the handshake and returns.
func TestNativeShutdownDuringHandshake(t *testing.T) {
	b := startBroker(t, "tcp", packets.ConnackSuccess, 300*time.Millisecond)
	srv, addr := serveNativeProxy(t, "tcp", b.upstreamAddress(), nil)
	silent, err := net.Dial("tcp", addr.String()) // never sends CONNECT
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waiting := make(chan *packets.Connack, 1)
	go func() { // its CONNACK is 300 ms away when Shutdown comes
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			waiting <- nil
			return
		}
		defer c.Close()
		cp := packets.NewControlPacket(packets.CONNECT)
		cp.Content.(*packets.Connect).ProtocolName = "MQTT"
		cp.Content.(*packets.Connect).ProtocolVersion = 5
		_, _ = cp.WriteTo(c)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		p, err := packets.ReadPacket(c)
		if err != nil {
			waiting <- nil
			return
		}
		ack, _ := p.Content.(*packets.Connack)
		waiting <- ack
	}()
	waitForCount(t, srv, 2)
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if ack := <-waiting; ack != nil {
		t.Errorf("client stopped before its CONNACK got CONNACK 0x%02x, want the socket closed", ack.ReasonCode)
	}
	select {
	case got := <-b.got:
		// The broker accepted the session: the proxy ends it cleanly, so
		// a Will would be discarded (connectUpstream does the same).
		if string(got) != string([]byte{packets.CONNECT, packets.DISCONNECT}) {
			t.Errorf("broker got packet types %v, want CONNECT, DISCONNECT", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the broker's connection did not end")
	}
	if n := srv.ConnectionCount(); n != 0 {
		t.Errorf("%d connections after Shutdown, want 0", n)
	}
}

// fullTCPListener listens on loopback with an accept queue that two
// connections fill, so the next SYN goes unanswered (from a review).
func fullTCPListener(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	for range 2 {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return addr
}

// denyWills refuses every Will; everything else is allowed.
type denyWills struct{ allowAll }

func (denyWills) Publish(string) authz.Decision           { return authz.Decision{} }
func (d denyWills) Grants(*authz.Identity, string) Grants { return d }

// nativeSocketPair serves the proxy's end of a new socket pair as an
// accepted connection of loop l, its send buffer cut to sndbuf bytes if
// non-zero, and returns the client's end.
func nativeSocketPair(t *testing.T, srv *Server, l *eventLoop, sndbuf int) *net.UnixConn {
	t.Helper()
	client, proxySide := socketPair(t)
	fd, err := dupFD(proxySide)
	if err != nil {
		t.Fatal(err)
	}
	proxySide.Close()
	if sndbuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndbuf); err != nil {
			t.Fatal(err)
		}
	}
	a := &acceptor{srv: srv, ctx: context.Background(), network: "unix", local: &net.UnixAddr{Net: "unix"}}
	srv.serveNative(a, l, fd, netip.AddrPort{})
	return client
}

// A client that does not read its refusal (a CONNACK naming a 60 KB Will
// topic, larger than the socket takes) holds up nobody else on its loop: the
// loop does not wait for it (a review found it waited up to 1 s).
func TestNativeRefusalToAClientThatDoesNotReadHoldsUpNobody(t *testing.T) {
	srv := newNativeServer(t, Options{AllowAnonymous: true, Policy: denyWills{}})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	l := srv.loops[0]
	victim := nativeSocketPair(t, srv, l, 0)
	connect := packets.NewControlPacket(packets.CONNECT)
	cc := connect.Content.(*packets.Connect)
	cc.ProtocolName, cc.ProtocolVersion, cc.CleanStart = "MQTT", 5, true
	if _, err := connect.WriteTo(victim); err != nil {
		t.Fatal(err)
	}
	_ = victim.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p, err := packets.ReadPacket(victim); err != nil || p.Content.(*packets.Connack).ReasonCode != packets.ConnackSuccess {
		t.Fatalf("victim's CONNACK: %v %v", p, err)
	}

	attacker := nativeSocketPair(t, srv, l, 4096)
	cc.WillFlag, cc.WillTopic, cc.WillMessage = true, "deny/"+strings.Repeat("a", 60000), []byte("x")
	cc.WillProperties = &packets.Properties{}
	go func() { _, _ = connect.WriteTo(attacker) }() // and never reads
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	if _, err := packets.NewControlPacket(packets.PINGREQ).WriteTo(victim); err != nil {
		t.Fatal(err)
	}
	if _, err := packets.ReadPacket(victim); err != nil {
		t.Fatalf("victim's PINGRESP: %v", err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("the victim waited %v for its PINGRESP while its loop refused a client that does not read", took)
	}
	// The refusal still reaches the attacker whole once it reads.
	_ = attacker.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := packets.ReadPacket(attacker)
	if err != nil {
		t.Fatalf("the attacker's CONNACK: %v", err)
	}
	if ack := p.Content.(*packets.Connack); ack.ReasonCode != packets.ConnackNotAuthorized || !strings.Contains(ack.Properties.ReasonString, "will topic") {
		t.Errorf("attacker got CONNACK 0x%02x %.40q, want 0x87 naming the Will topic", ack.ReasonCode, ack.Properties.ReasonString)
	}
}

// slowAuth verifies any OAUTH2-JWT token as its own text, after delay,
// with no cache: every CONNECT is verified on a goroutine.
type slowAuth struct {
	delay    time.Duration
	entered  chan struct{} // receives once per Verify call, if not nil
	returned chan struct{} // likewise, when Verify returns
}

func (slowAuth) SupportsMethod(m string) bool { return m == "OAUTH2-JWT" }

func (a slowAuth) Verify(_ context.Context, _ string, data []byte) (*authz.Identity, error) {
	if a.entered != nil {
		a.entered <- struct{}{}
	}
	time.Sleep(a.delay)
	if a.returned != nil {
		defer func() { a.returned <- struct{}{} }()
	}
	return &authz.Identity{AuthenticationName: string(data), ExpiresAt: time.Now().Add(time.Hour)}, nil
}

// tokenConnect is a CONNECT authenticating with token.
func tokenConnect(token string) *packets.ControlPacket {
	cp := packets.NewControlPacket(packets.CONNECT)
	cc := cp.Content.(*packets.Connect)
	cc.ProtocolName, cc.ProtocolVersion, cc.CleanStart = "MQTT", 5, true
	cc.Properties = &packets.Properties{AuthMethod: "OAUTH2-JWT", AuthData: []byte(token)}
	return cp
}

// newNativeServer makes a proxy with opts (a plain net.Dialer unless
// set) towards a scripted broker on a Unix socket accepting every CONNECT.
func newNativeServer(t *testing.T, opts Options) *Server {
	t.Helper()
	b := startBroker(t, "unix", packets.ConnackSuccess, 0)
	cfg := DefaultConfig()
	cfg.Upstream.Address = b.upstreamAddress()
	if opts.Dialer == nil {
		opts.Dialer = &net.Dialer{}
	}
	srv, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// serveTCP serves srv with ctx on a new loopback TCP listener; the caller
// shuts srv down and waits on served.
func serveTCP(t *testing.T, ctx context.Context, srv *Server) (net.Listener, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	return ln, served
}

// Verifications that finish together dial together, each from its own
// goroutine: they must not share the broker's socket address, which
// Connect writes into (from a review; the race detector caught it).
func TestNativeConcurrentDials(t *testing.T) {
	srv := newNativeServer(t, Options{Authenticator: slowAuth{delay: 20 * time.Millisecond}})
	ln, served := serveTCP(t, context.Background(), srv)
	defer func() {
		_ = srv.Shutdown(context.Background())
		<-served
	}()
	const clients = 8
	errs := make(chan error, clients)
	for i := range clients {
		go func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if _, err := tokenConnect(fmt.Sprintf("user%d", i)).WriteTo(c); err != nil {
				errs <- err
				return
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			p, err := packets.ReadPacket(c)
			if err == nil && p.Content.(*packets.Connack).ReasonCode != packets.ConnackSuccess {
				err = fmt.Errorf("CONNACK 0x%02x", p.Content.(*packets.Connack).ReasonCode)
			}
			errs <- err
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// Shutdown waits for a token verification in progress, as it waits for a
// blocking handshake's (from a review: it returned, the verifying goroutine
// still running).
func TestNativeShutdownWaitsForVerification(t *testing.T) {
	auth := slowAuth{delay: 300 * time.Millisecond, entered: make(chan struct{}, 1), returned: make(chan struct{}, 1)}
	srv := newNativeServer(t, Options{Authenticator: auth})
	ln, served := serveTCP(t, context.Background(), srv)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := tokenConnect("alice").WriteTo(c); err != nil {
		t.Fatal(err)
	}
	<-auth.entered
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-served
	select {
	case <-auth.returned:
	default:
		t.Error("Shutdown returned while a connection's token verification was still running")
		<-auth.returned
	}
	if got := testutil.ToFloat64(srv.metrics.connects.WithLabelValues(resultStopped)); got != 1 {
		t.Errorf("connects stopped before CONNACK = %v, want 1", got)
	}
}

func TestNewNativeTarget(t *testing.T) {
	mptcp := &net.Dialer{}
	mptcp.SetMultipathTCP(true)
	for _, tc := range []struct {
		name    string
		address string
		dialer  Dialer
		tls     bool
		native  bool
	}{
		{"IPv4 literal", "127.0.0.1:1883", &net.Dialer{}, false, true},
		{"IPv6 literal", "[::1]:1883", &net.Dialer{}, false, true},
		{"Unix socket", "unix:/run/mosquitto.sock", &net.Dialer{}, false, true},
		{"abstract Unix socket", "unix:@mosquitto", &net.Dialer{}, false, true},
		{"dial timeout as configured", "127.0.0.1:1883", &net.Dialer{Timeout: 5 * time.Second}, false, true},
		{"host name", "localhost:1883", &net.Dialer{}, false, false},
		{"IPv6 zone", "[fe80::1%lo]:1883", &net.Dialer{}, false, false},
		{"TLS", "127.0.0.1:1883", &net.Dialer{}, true, false},
		{"another Dialer", "127.0.0.1:1883", &tls.Dialer{}, false, false},
		{"shorter Dialer timeout", "127.0.0.1:1883", &net.Dialer{Timeout: time.Second}, false, false},
		{"Multipath TCP", "127.0.0.1:1883", mptcp, false, false},
		{"Control hook", "127.0.0.1:1883", &net.Dialer{Control: func(string, string, syscall.RawConn) error { return nil }}, false, false},
		{"keep-alive config", "127.0.0.1:1883", &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true}}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Upstream.Address = tc.address
			cfg.Upstream.TLS.Enabled = tc.tls
			if got := newNativeTarget(cfg, Options{Dialer: tc.dialer}).sa != nil; got != tc.native {
				t.Errorf("native = %v, want %v", got, tc.native)
			}
		})
	}
}

// syncBuffer is a log sink for tests.
type syncBuffer = syncbuf.Buffer

// A log line written after the client has gone still names it: the
// address is taken at accept (a review found ":0" once the socket was
// reset or closed, when it was looked up on first use).
func TestNativeLogsNameTheClientAfterItLeft(t *testing.T) {
	logs := &syncBuffer{}
	srv := newNativeServer(t, Options{AllowAnonymous: true,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ln, served := serveTCP(t, context.Background(), srv)
	defer func() {
		_ = srv.Shutdown(context.Background())
		<-served
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client := c.LocalAddr().String()
	waitForCount(t, srv, 1)
	_ = c.(*net.TCPConn).SetLinger(0)
	c.Close() // a reset, before any CONNECT
	waitForCount(t, srv, 0)
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "no connect" {
			if rec["remote"] != client {
				t.Errorf("the no-connect line names remote %q, want the client's %q", rec["remote"], client)
			}
			return
		}
	}
	t.Errorf("no \"no connect\" line in the logs:\n%s", logs.String())
}

// Ending Serve's context ends the connections it accepted, as a shutdown
// does: a relaying client gets DISCONNECT 0x8B; Serve returns.
func TestNativeServeContextEndsItsConnections(t *testing.T) {
	srv := newNativeServer(t, Options{AllowAnonymous: true})
	ctx, cancel := context.WithCancel(context.Background())
	ln, served := serveTCP(t, ctx, srv)
	client, ack := connectClient(t, ln.Addr())
	if ack.ReasonCode != packets.ConnackSuccess {
		t.Fatalf("CONNACK 0x%02x", ack.ReasonCode)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := packets.ReadPacket(client)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if d, ok := p.Content.(*packets.Disconnect); !ok || d.ReasonCode != packets.DisconnectServerShuttingDown {
		t.Errorf("got %v, want DISCONNECT 0x8B", p)
	}
	waitForCount(t, srv, 0)
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// Out of descriptors, the loop stops accepting for a growing pause (the
// listening socket is level-triggered: it would report the same
// connection again at once) and accepts it once a descriptor is free.
func TestNativeAcceptBacksOffWhenOutOfDescriptors(t *testing.T) {
	b := startBroker(t, "unix", packets.ConnackSuccess, 0)
	srv, addr := serveNativeProxy(t, "tcp", b.upstreamAddress(), nil)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// A low soft limit keeps the filling below quick whatever the
	// machine allows; restored when the test ends.
	low := lim
	low.Cur = min(lim.Cur, 1024)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &lim) }()
	// Another process connects (this one will have no descriptor to do
	// it with) once this one has used up every descriptor it may open.
	_, port, _ := net.SplitHostPort(addr.String())
	client := exec.Command("bash", "-c", "sleep 0.5; exec 3<>/dev/tcp/127.0.0.1/"+port+"; sleep 5")
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Process.Kill(); _ = client.Wait() }()
	var filler []int
	release := func() {
		for _, fd := range filler {
			unix.Close(fd)
		}
		filler = nil
	}
	defer release()
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		filler = append(filler, fd)
		if len(filler) > int(low.Cur) {
			t.Fatal("could not use up the descriptors")
		}
	}
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(srv.metrics.acceptErrors) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			release()
			t.Fatalf("accept errors = %v, want the loop to keep retrying while out of descriptors", testutil.ToFloat64(srv.metrics.acceptErrors))
		}
	}
	time.Sleep(100 * time.Millisecond)
	// 5, 10, 20, 40, 80 ms pauses: a handful of tries, not a spin.
	if n := testutil.ToFloat64(srv.metrics.acceptErrors); n > 10 {
		t.Errorf("%v accept errors in about 150 ms: the loop retries without pausing", n)
	}
	if n := srv.ConnectionCount(); n != 0 {
		t.Fatalf("%d connections while out of descriptors", n)
	}
	release()
	waitForCount(t, srv, 1) // accepted at the next retry
}

// With isolation off the proxy adopts the broker's client id before the
// connection relays: a policy re-check, which may run at any time, then
// reads it (the race detector's check; it adopted it after, and raced).
func TestBrokerAssignedClientIDBeforeRelaying(t *testing.T) {
	b := startBroker(t, "unix", packets.ConnackSuccess, 0)
	id := "broker-assigned"
	b.assigned.Store(&id)
	// A policy, so that a re-check compiles grants for c.clientID.
	srv, addr := serveNativeProxyWith(t, "tcp", b.upstreamAddress(), func(c *Config) { c.Session.Isolation = IsolationOff },
		Options{Policy: allowPolicy{}})
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				srv.Recheck()
			}
		}
	}()
	for range 12 { // the scripted broker reports at most 16 connections unread
		c, ack := connectClient(t, addr)
		if ack.Properties == nil || ack.Properties.AssignedClientID != id {
			t.Errorf("CONNACK %+v, want the broker's Assigned Client Identifier %q", ack, id)
		}
		c.Close()
	}
	close(stop)
	<-done
}

// allowPolicy grants everything to everyone.
type allowPolicy struct{}

func (allowPolicy) Grants(*authz.Identity, string) Grants { return allowAll{} }

// SUBSCRIBEs awaiting the broker's SUBACK hold at most 1 MiB: a client that
// keeps sending them while the SUBACKs do not come (this scripted broker
// never answers one) is ended with DISCONNECT 0x97, whether or not their
// filters are new.
func TestPendingSubscribesAreBounded(t *testing.T) {
	b := startBroker(t, "unix", packets.ConnackSuccess, 0)
	_, addr := serveNativeProxy(t, "tcp", b.upstreamAddress(), nil)
	c, _ := connectClient(t, addr)
	subscribe := func(id uint16) error {
		sub := packets.NewControlPacket(packets.SUBSCRIBE)
		s := sub.Content.(*packets.Subscribe)
		s.PacketID = id
		for i := range 5000 { // the same 5,000 filters each time: live after the first
			s.Subscriptions = append(s.Subscriptions, packets.SubOptions{Topic: fmt.Sprintf("f/%d", i)})
		}
		_, err := sub.WriteTo(c)
		return err
	}
	var sent uint16
	for sent = 1; sent <= 20; sent++ { // 5,000 filters pend as about 120 KB
		if err := subscribe(sent); err != nil {
			break // the proxy closed the connection
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := packets.ReadPacket(c)
	if err != nil {
		t.Fatalf("after %d SUBSCRIBEs: %v, want DISCONNECT 0x97", sent-1, err)
	}
	d, ok := p.Content.(*packets.Disconnect)
	if !ok || d.ReasonCode != packets.DisconnectQuotaExceeded {
		t.Fatalf("got %s %+v, want DISCONNECT 0x97", p.PacketType(), p.Content)
	}
}

// Connections over limits.maxConnections are answered CONNACK 0x97 once
// their CONNECT arrives, but at most maxOverLimitAnswers wait for it at
// once: beyond that a socket is closed unanswered, so a flood of silent
// sockets costs a bounded number of descriptors. Places free up as the
// waiting sockets end.
func TestOverLimitAnswersAreBounded(t *testing.T) {
	b := startBroker(t, "unix", packets.ConnackSuccess, 0)
	srv, addr := serveNativeProxy(t, "tcp", b.upstreamAddress(), func(c *Config) { c.Limits.MaxConnections = 1 })
	connectClient(t, addr)
	silent := make([]net.Conn, maxOverLimitAnswers)
	for i := range silent {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		silent[i] = c
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		srv.mu.Lock()
		n := srv.overLimit
		srv.mu.Unlock()
		if n == maxOverLimitAnswers {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sockets waiting to be refused, want %d", n, maxOverLimitAnswers)
		}
	}
	if _, ack, err := dialConnect(addr, 0); err == nil {
		t.Fatalf("with %d refusals waiting: CONNACK %+v, want the socket closed unanswered", maxOverLimitAnswers, ack)
	}
	if _, err := tokenConnect("any").WriteTo(silent[0]); err != nil { // the limit is judged before the token
		t.Fatal(err)
	}
	_ = silent[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := packets.ReadPacket(silent[0])
	if err != nil {
		t.Fatalf("a waiting socket's CONNECT: %v, want CONNACK 0x97", err)
	}
	if ack, ok := p.Content.(*packets.Connack); !ok || ack.ReasonCode != packets.ConnackQuotaExceeded {
		t.Fatalf("a waiting socket's CONNECT: %s %+v, want CONNACK 0x97", p.PacketType(), p.Content)
	}
	for _, c := range silent[1:] {
		c.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, ack, err := dialConnect(addr, 0)
		if err == nil && ack.ReasonCode == packets.ConnackQuotaExceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the waiting sockets closed: CONNACK %+v (err %v), want 0x97", ack, err)
		}
	}
	if n := srv.ConnectionCount(); n != 1 {
		t.Errorf("ConnectionCount() = %d, want 1", n)
	}
}
