package test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy/listener"
	"github.com/mqtt-authproxy/mqtt-authproxy/test/harness"
)

// SPEC 6: the same proxy serves MQTT over TLS and over WebSocket (ws and
// wss, path /mqtt, subprotocol mqtt), with JWT authentication on each.
func TestTLSAndWebSocketListeners(t *testing.T) {
	s, conns := newListenersStack(t)
	for _, name := range []string{"tls", "ws", "wss"} {
		t.Run(name, func(t *testing.T) {
			tok := s.mint(t, principalA, time.Hour, nil)
			c, err := harness.ConnectOver(t, conns[name](), harness.ClientOptions{ClientID: "over-" + name, CleanStart: true,
				AuthMethod: "OAUTH2-JWT", AuthData: []byte(tok)})
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Log(s.px.Logs.String())
				}
			})
			subscribe(t, c, "over/"+name, 1)
			publish(t, c, &paho.Publish{Topic: "over/" + name, QoS: 1, Payload: []byte(name)})
			if got := c.WaitMessages(1, 5*time.Second); len(got) != 1 || string(got[0].Payload) != name {
				t.Fatalf("round trip over %s: got %d messages", name, len(got))
			}
		})
	}
}

// SPEC 6: on shutdown every client gets DISCONNECT 0x8B, whichever listener
// it came through. Closing the WebSocket listener used to end its live
// connections under the proxy as it wrote the DISCONNECTs.
func TestShutdownDisconnectsEveryListener(t *testing.T) {
	s, conns := newListenersStack(t)
	tok := s.mint(t, principalA, time.Hour, nil)
	clients := map[string]*harness.Client{}
	conns["tcp"] = dialTCP(t, s.px.Addr)
	for name, dial := range conns {
		for i := range 4 {
			id := fmt.Sprint("shut-", name, "-", i)
			c, err := harness.ConnectOver(t, dial(), harness.ClientOptions{ClientID: id, CleanStart: true,
				AuthMethod: "OAUTH2-JWT", AuthData: []byte(tok), NoAutoClose: true})
			if err != nil {
				t.Fatalf("%s: connect: %v", id, err)
			}
			clients[id] = c
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.px.Server.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for id, c := range clients {
		if d, closed := c.WaitClosed(5 * time.Second); !closed || d == nil || d.ReasonCode != 0x8b {
			t.Errorf("%s: closed %v DISCONNECT %+v, want 0x8B", id, closed, d)
		}
	}
}

// newListenersStack serves an authenticating proxy on a TLS, a WebSocket and
// a secure WebSocket listener besides its TCP one, and returns how to dial
// each.
func newListenersStack(t *testing.T, mutate ...stackOption) (*authStack, map[string]func() net.Conn) {
	s := newAuthStack(t, mutate...)
	certFile, keyFile, pool := harness.SelfSignedCert(t, t.TempDir(), "proxy")

	tlsLn, err := listener.ListenTLS("127.0.0.1:0", certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	s.px.Serve(t, tlsLn)
	wsLn, err := listener.ListenWebSocket("127.0.0.1:0", "/mqtt", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.px.Serve(t, wsLn)
	r, err := listener.NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	wssCfg, err := listener.TLSConfig(r, "")
	if err != nil {
		t.Fatal(err)
	}
	wssLn, err := listener.ListenWebSocket("127.0.0.1:0", "/mqtt", wssCfg)
	if err != nil {
		t.Fatal(err)
	}
	s.px.Serve(t, wssLn)

	dialWS := func(url string, client *http.Client) net.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"mqtt"}, HTTPClient: client})
		if err != nil {
			t.Fatalf("websocket dial %s: %v", url, err)
		}
		return websocket.NetConn(context.Background(), c, websocket.MessageBinary)
	}
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	conns := map[string]func() net.Conn{
		"tls": func() net.Conn {
			c, err := tls.Dial("tcp", tlsLn.Addr().String(), &tls.Config{RootCAs: pool})
			if err != nil {
				t.Fatalf("tls dial: %v", err)
			}
			return c
		},
		"ws":  func() net.Conn { return dialWS("ws://"+wsLn.Addr().String()+"/mqtt", nil) },
		"wss": func() net.Conn { return dialWS("wss://"+wssLn.Addr().String()+"/mqtt", tlsClient) },
	}
	return s, conns
}

// dialTCP dials addr (the proxy's plain listener) on each call.
func dialTCP(t *testing.T, addr string) func() net.Conn {
	return func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// SPEC 2.3: a connection whose token expires is ended even when its client
// has stopped reading and the proxy's writes to it are stuck: on TLS and
// WebSocket, where a goroutine writes to the client, the DISCONNECT used to
// wait for that goroutine's lock for as long as the client did not read.
func TestEndingAClientThatStopsReading(t *testing.T) {
	s, conns := newListenersStack(t, func(_ *proxy.Config, _ *proxy.Options, tc *token.Config) { tc.ClockSkew = time.Second })
	conns["tcp"] = dialTCP(t, s.px.Addr)
	tok := s.mint(t, principalA, 3*time.Second, nil)
	props := harness.AppendString([]byte{packets.PropAuthMethod}, "OAUTH2-JWT")
	props = harness.AppendString(append(props, packets.PropAuthData), tok)
	for name, dial := range conns {
		nc := dial()
		t.Cleanup(func() { nc.Close() })
		r := packetcodec.NewReader(nc, 1<<20)
		for _, p := range [][]byte{
			harness.ConnectV5{ClientID: "stuck-" + name, CleanStart: true, Props: props}.Bytes(),
			harness.Packet(0x82, append(harness.AppendString([]byte{0, 1, 0}, "flood"), 0)), // SUBSCRIBE id 1, QoS 0
		} {
			if _, err := nc.Write(p); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := r.ReadFrame(); err != nil { // CONNACK, SUBACK; then the client reads no more
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	pub := harness.DialRaw(t, s.broker.Addr) // straight to the broker: the flood needs no proxy
	pub.Write(harness.ConnectV5{ClientID: "flooder", CleanStart: true}.Bytes())
	if _, err := pub.ReadFrame(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	flood := harness.Packet(0x30, append(harness.AppendVBI(harness.AppendString(nil, "flood"), 0), make([]byte, 60_000)...))
	go func() {
		for range 600 { // 36 MB: more than the sockets between the broker and the clients hold
			if _, err := pub.TryWrite(flood); err != nil {
				return
			}
		}
	}()
	// exp + skew is 4 s away; the final writes wait at most 1 s each.
	deadline := time.Now().Add(12 * time.Second)
	for s.px.Server.ConnectionCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open 8 s after their token expired", s.px.Server.ConnectionCount())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SPEC 4 keep-alive over WebSocket: a client silent for 1.5 × its keep
// alive gets DISCONNECT 0x8D, as over TCP. A read deadline would close the
// WebSocket under the proxy before it could write it.
func TestKeepAliveTimeoutOverWebSocket(t *testing.T) {
	s, conns := newListenersStack(t)
	tok := s.mint(t, principalA, time.Hour, nil)
	conns["tcp"] = dialTCP(t, s.px.Addr)
	for _, name := range []string{"ws", "wss", "tcp"} {
		t.Run(name, func(t *testing.T) {
			nc := conns[name]()
			defer nc.Close()
			r := packetcodec.NewReader(nc, 1<<20)
			if _, err := nc.Write(harness.ConnectV5{ClientID: "silent-" + name, CleanStart: true, KeepAlive: 1,
				Props: authProps("OAUTH2-JWT", tok)}.Bytes()); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if f, err := r.ReadFrame(); err != nil || f.Type != packets.CONNACK {
				t.Fatalf("CONNACK: %v", err)
			}
			start := time.Now()
			f, err := r.ReadFrame()
			if err != nil || f.Type != packets.DISCONNECT || len(f.Body) == 0 || f.Body[0] != packets.DisconnectKeepAliveTimeout {
				t.Fatalf("after %s of silence: %v % x, want DISCONNECT 0x8D", time.Since(start), err, f.Raw)
			}
			if took := time.Since(start); took < time.Second {
				t.Errorf("ended after %s, before 1.5 × the keep alive", took)
			}
		})
	}
	t.Run("ws client that keeps talking", func(t *testing.T) {
		nc := conns["ws"]()
		defer nc.Close()
		r := packetcodec.NewReader(nc, 1<<20)
		if _, err := nc.Write(harness.ConnectV5{ClientID: "talking", CleanStart: true, KeepAlive: 1,
			Props: authProps("OAUTH2-JWT", tok)}.Bytes()); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if f, err := r.ReadFrame(); err != nil || f.Type != packets.CONNACK {
			t.Fatalf("CONNACK: %v", err)
		}
		for i := range 6 { // 3 s, twice the limit
			time.Sleep(500 * time.Millisecond)
			if _, err := nc.Write([]byte{packets.PINGREQ << 4, 0}); err != nil {
				t.Fatal(err)
			}
			if f, err := r.ReadFrame(); err != nil || f.Type != packets.PINGRESP {
				t.Fatalf("PINGREQ %d: %v % x, want PINGRESP", i+1, err, f.Raw)
			}
		}
	})
}
