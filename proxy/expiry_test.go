package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// fakeAuth accepts tokens of the form "<principal>:<ttl>" (e.g. "a:10m").
type fakeAuth struct{}

func (fakeAuth) SupportsMethod(m string) bool { return m == "OAUTH2-JWT" }

func (fakeAuth) Verify(_ context.Context, _ string, data []byte) (*authz.Identity, error) {
	name, ttl, ok := strings.Cut(string(data), ":")
	d, err := time.ParseDuration(ttl)
	if !ok || err != nil {
		return nil, token.ErrMalformed
	}
	if d <= 0 {
		return nil, token.ErrExpired
	}
	return &authz.Identity{AuthenticationName: name, Issuer: "fake", ExpiresAt: time.Now().Add(d)}, nil
}

// pipeDialer hands the proxy one end of a net.Pipe per dial and the test the
// other, as a fake broker.
type pipeDialer struct{ brokers chan net.Conn }

func (p *pipeDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	a, b := net.Pipe()
	p.brokers <- b
	return a, nil
}

// fakeBroker accepts one CONNECT and then reports what it read last before
// the proxy closed the connection.
func fakeBroker(t *testing.T, nc net.Conn) <-chan byte {
	last := make(chan byte, 1)
	go func() {
		defer nc.Close()
		r := packetcodec.NewReader(nc, 1<<20)
		if f, err := r.ReadFrame(); err != nil || f.Type != packets.CONNECT {
			t.Errorf("fake broker: first packet %v, err %v", f.Type, err)
			return
		}
		if _, err := nc.Write([]byte{0x20, 0x03, 0x00, 0x00, 0x00}); err != nil {
			return
		}
		var typ byte
		for {
			f, err := r.ReadFrame()
			if err != nil {
				last <- typ
				return
			}
			typ = f.Type
		}
	}()
	return last
}

func connectBytes(method, data string) []byte {
	str := func(b []byte, s string) []byte { return append(append(b, byte(len(s)>>8), byte(len(s))), s...) }
	props := str([]byte{packets.PropAuthMethod}, method)
	props = str(append(props, packets.PropAuthData), data)
	body := str(nil, "MQTT")
	body = append(body, 5, 0x02, 0, 0, byte(len(props)))
	body = append(body, props...)
	body = str(body, "c1")
	return append([]byte{0x10, byte(len(body))}, body...)
}

// SPEC 2.3 under a fake clock: DISCONNECT 0xA0 "token expired" exactly at
// exp + skew, not before; re-authentication moves the deadline; the Will is
// published (no upstream DISCONNECT) or discarded per willOnExpiry.
func TestExpiryTimer(t *testing.T) {
	tests := []struct {
		name         string
		willOnExpiry bool
		reauthAfter  time.Duration // 0: no re-auth
		wantEnd      time.Duration // since CONNECT
		wantUpLast   byte          // last packet the broker read
	}{
		{name: "expires at exp+skew, will published", willOnExpiry: true, wantEnd: 10*time.Minute + 30*time.Second, wantUpLast: 0},
		{name: "expires, will discarded", willOnExpiry: false, wantEnd: 10*time.Minute + 30*time.Second, wantUpLast: packets.DISCONNECT},
		{name: "re-auth moves the deadline", willOnExpiry: true, reauthAfter: 5 * time.Minute, wantEnd: 5*time.Minute + 20*time.Minute + 30*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := DefaultConfig()
				cfg.Session.WillOnExpiry = tt.willOnExpiry
				d := &pipeDialer{brokers: make(chan net.Conn, 1)}
				srv, err := New(cfg, Options{Authenticator: fakeAuth{}, Dialer: d, ClockSkew: 30 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				client, server := net.Pipe()
				defer client.Close()
				srv.ServeConn(context.Background(), server)
				start := time.Now()
				go func() { _, _ = client.Write(connectBytes("OAUTH2-JWT", "alice:10m")) }()
				upLast := fakeBroker(t, <-d.brokers)
				r := packetcodec.NewReader(client, 1<<20)
				f, err := r.ReadFrame()
				if err != nil || f.Type != packets.CONNACK || f.Body[1] != 0 {
					t.Fatalf("CONNACK: %v % x", err, f.Raw)
				}
				if tt.reauthAfter > 0 {
					time.Sleep(tt.reauthAfter)
					str := func(b []byte, s string) []byte { return append(append(b, byte(len(s)>>8), byte(len(s))), s...) }
					props := str([]byte{packets.PropAuthMethod}, "OAUTH2-JWT")
					props = str(append(props, packets.PropAuthData), "alice:20m")
					body := append([]byte{0x19, byte(len(props))}, props...)
					go func() { _, _ = client.Write(append([]byte{0xf0, byte(len(body))}, body...)) }()
					f, err := r.ReadFrame()
					if err != nil || f.Type != packets.AUTH || f.Body[0] != 0 {
						t.Fatalf("re-auth answer: %v % x", err, f.Raw)
					}
				}
				f, err = r.ReadFrame()
				ended := time.Since(start)
				if err != nil || f.Type != packets.DISCONNECT {
					t.Fatalf("want DISCONNECT, got %v % x", err, f.Raw)
				}
				cp, err := packetcodec.Decode(f)
				if err != nil {
					t.Fatal(err)
				}
				dis := cp.Content.(*packets.Disconnect)
				if dis.ReasonCode != packets.DisconnectMaximumConnectTime || dis.Properties.ReasonString != "token expired" {
					t.Errorf("DISCONNECT 0x%02x %q, want 0xA0 'token expired'", dis.ReasonCode, dis.Properties.ReasonString)
				}
				if ended != tt.wantEnd {
					t.Errorf("ended after %s, want %s", ended, tt.wantEnd)
				}
				if got := <-upLast; got != tt.wantUpLast {
					t.Errorf("broker's last packet type %d, want %d", got, tt.wantUpLast)
				}
				if _, err := r.ReadFrame(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe) {
					t.Errorf("client connection still open after DISCONNECT: %v", err)
				}
				_ = srv.Shutdown(context.Background())
			})
		})
	}
}

// pipeProxy starts a server with auth (and opts' Policy) and a net.Pipe
// broker dialer, serves one net.Pipe client connection and sends its
// CONNECT (alice, 10 min); it returns the client's end and the dialer.
func pipeProxy(t *testing.T, auth Authenticator, opts ...Options) (*Server, net.Conn, *pipeDialer) {
	d := &pipeDialer{brokers: make(chan net.Conn, 1)}
	o := Options{}
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Authenticator, o.Dialer = auth, d
	srv, err := New(DefaultConfig(), o)
	if err != nil {
		t.Fatal(err)
	}
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close() })
	srv.ServeConn(context.Background(), server)
	go func() { _, _ = client.Write(connectBytes("OAUTH2-JWT", "alice:10m")) }()
	return srv, client, d
}

// A shutdown that arrives while the successful CONNACK is on its way (the
// client has not read it yet) must not drop the connection silently: the
// client has been told it is connected, so it gets its CONNACK and then
// DISCONNECT 0x8B (SPEC 6). net.Pipe makes the CONNACK write wait for the
// client's read, holding the handshake exactly in that window.
func TestShutdownDuringConnackSendsDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client, d := pipeProxy(t, fakeAuth{})
		fakeBroker(t, <-d.brokers)
		synctest.Wait() // the proxy is blocked writing the CONNACK
		shutdown := make(chan error, 1)
		go func() { shutdown <- srv.Shutdown(context.Background()) }()
		synctest.Wait() // Shutdown has asked the connection to stop

		r := packetcodec.NewReader(client, 1<<20)
		f, err := r.ReadFrame()
		if err != nil || f.Type != packets.CONNACK || f.Body[1] != 0 {
			t.Fatalf("CONNACK: %v % x", err, f.Raw)
		}
		f, err = r.ReadFrame()
		if err != nil || f.Type != packets.DISCONNECT || f.Body[0] != packets.DisconnectServerShuttingDown {
			t.Fatalf("after CONNACK: %v % x, want DISCONNECT 0x8B", err, f.Raw)
		}
		if err := <-shutdown; err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	})
}

// blockingAuth is fakeAuth that waits for release before answering.
type blockingAuth struct {
	fakeAuth
	entered, release chan struct{}
}

func (b blockingAuth) Verify(ctx context.Context, m string, data []byte) (*authz.Identity, error) {
	close(b.entered)
	<-b.release
	return b.fakeAuth.Verify(ctx, m, data)
}

// A shutdown while the token is being verified closes the client and
// never dials the broker: no session is created or taken over for a
// client that is gone.
func TestShutdownDuringAuthenticationDoesNotDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		auth := blockingAuth{entered: make(chan struct{}), release: make(chan struct{})}
		srv, client, d := pipeProxy(t, auth)
		<-auth.entered
		shutdown := make(chan error, 1)
		go func() { shutdown <- srv.Shutdown(context.Background()) }()
		synctest.Wait()
		close(auth.release)
		if err := <-shutdown; err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		select {
		case b := <-d.brokers:
			b.Close()
			t.Fatal("the broker was dialled for a connection stopped during authentication")
		default:
		}
		if f, err := packetcodec.NewReader(client, 1<<20).ReadFrame(); err == nil {
			t.Fatalf("client got % x, want the connection closed", f.Raw)
		}
	})
}

// A shutdown after the broker accepted the CONNECT but before the proxy
// relayed the CONNACK ends the broker session cleanly (DISCONNECT 0x00:
// no Will), since the client never learns it was connected.
func TestShutdownBeforeConnackDisconnectsUpstream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client, d := pipeProxy(t, fakeAuth{})
		broker := <-d.brokers
		defer broker.Close()
		br := packetcodec.NewReader(broker, 1<<20)
		if f, err := br.ReadFrame(); err != nil || f.Type != packets.CONNECT {
			t.Fatalf("broker: first packet %v, err %v", f.Type, err)
		}
		shutdown := make(chan error, 1)
		go func() { shutdown <- srv.Shutdown(context.Background()) }()
		synctest.Wait() // stop recorded; the proxy waits for the CONNACK
		if _, err := broker.Write([]byte{0x20, 0x03, 0x00, 0x00, 0x00}); err != nil {
			t.Fatal(err)
		}
		f, err := br.ReadFrame()
		if err != nil || f.Type != packets.DISCONNECT || (len(f.Body) > 0 && f.Body[0] != 0) {
			t.Fatalf("broker got %v % x, want DISCONNECT 0x00", err, f.Raw)
		}
		if err := <-shutdown; err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if f, err := packetcodec.NewReader(client, 1<<20).ReadFrame(); err == nil {
			t.Fatalf("client got % x, want the connection closed without CONNACK", f.Raw)
		}
	})
}
