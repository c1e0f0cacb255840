package proxy

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"
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
}

func startBroker(t *testing.T, network string, code byte, delay time.Duration) *scriptedBroker {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "broker.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
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
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		p, err := packets.ReadPacket(c)
		if err != nil {
			return
		}
		types = append(types, p.Type)
		if p.Type == packets.CONNECT {
			time.Sleep(b.delay)
			ack := packets.NewControlPacket(packets.CONNACK)
			ack.Content.(*packets.Connack).ReasonCode = b.code
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
	cfg := DefaultConfig()
	cfg.Upstream.Address = upstream
	cfg.Upstream.DialTimeout = 2 * time.Second
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := New(cfg, Options{AllowAnonymous: true, Dialer: &net.Dialer{}})
	if err != nil {
		t.Fatal(err)
	}
	if srv.native.sa == nil {
		t.Fatalf("upstream %q does not qualify for native connections", upstream)
	}
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "proxy.sock")
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
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
	c, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cp := packets.NewControlPacket(packets.CONNECT)
	cp.Content.(*packets.Connect).ClientID = "c1"
	cp.Content.(*packets.Connect).ProtocolName = "MQTT"
	cp.Content.(*packets.Connect).ProtocolVersion = 5
	cp.Content.(*packets.Connect).CleanStart = true
	if _, err := cp.WriteTo(c); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := packets.ReadPacket(c)
	if err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	ack, ok := p.Content.(*packets.Connack)
	if !ok {
		t.Fatalf("got %s, want CONNACK", p.PacketType())
	}
	return c, ack
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
			if tc.listener == "tcp" {
				fd := c.nc.(*rawSock).fd
				for _, o := range []struct {
					level, opt int
					name       string
					want       int
				}{
					{unix.IPPROTO_TCP, unix.TCP_NODELAY, "TCP_NODELAY", 1},
					{unix.SOL_SOCKET, unix.SO_KEEPALIVE, "SO_KEEPALIVE", 1},
					{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, "TCP_KEEPIDLE", 15},
					{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, "TCP_KEEPINTVL", 15},
				} {
					if v, err := unix.GetsockoptInt(fd, o.level, o.opt); err != nil || v != o.want {
						t.Errorf("%s = %d (%v) on the accepted socket, want %d as Go's listener sets", o.name, v, err, o.want)
					}
				}
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

func TestNativeRefusals(t *testing.T) {
	t.Run("broker refuses", func(t *testing.T) {
		b := startBroker(t, "unix", packets.ConnackNotAuthorized, 0)
		srv, addr := serveNativeProxy(t, "tcp", b.upstreamAddress(), nil)
		_, ack := connectClient(t, addr)
		if ack.ReasonCode != packets.ConnackServerUnavailable || ack.Properties.ReasonString != "upstream broker refused the proxy" {
			t.Fatalf("CONNACK 0x%02x %q, want 0x88 naming the broker's refusal", ack.ReasonCode, ack.Properties.ReasonString)
		}
		waitForCount(t, srv, 0)
	})
	t.Run("no broker", func(t *testing.T) {
		srv, addr := serveNativeProxy(t, "tcp", "unix:"+filepath.Join(t.TempDir(), "none.sock"), nil)
		_, ack := connectClient(t, addr)
		if ack.ReasonCode != packets.ConnackServerUnavailable {
			t.Fatalf("CONNACK 0x%02x, want 0x88", ack.ReasonCode)
		}
		if got := testutil.ToFloat64(srv.metrics.upstreamDialErrors); got != 1 {
			t.Errorf("upstream dial errors = %v, want 1", got)
		}
		waitForCount(t, srv, 0)
	})
	t.Run("broker silent past the dial timeout", func(t *testing.T) {
		b := startBroker(t, "tcp", packets.ConnackSuccess, 3*time.Second)
		srv, addr := serveNativeProxy(t, "tcp", b.upstreamAddress(), func(c *Config) { c.Upstream.DialTimeout = 200 * time.Millisecond })
		start := time.Now()
		_, ack := connectClient(t, addr)
		if ack.ReasonCode != packets.ConnackServerUnavailable {
			t.Fatalf("CONNACK 0x%02x, want 0x88", ack.ReasonCode)
		}
		if took := time.Since(start); took < 150*time.Millisecond || took > 2*time.Second {
			t.Errorf("answered after %v, want about the 200 ms dial timeout", took)
		}
		waitForCount(t, srv, 0)
	})
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
	path := filepath.Join(t.TempDir(), "broker.sock")
	fd := listenUnixBacklog0(t, path)
	queued, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer queued.Close()
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
