package test

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy"
	"github.com/mqtt-authproxy/mqtt-authproxy/test/harness"
)

// connectRoundTrip dials addr, sends connect and reads the CONNACK, then
// closes with DISCONNECT.
func connectRoundTrip(b *testing.B, addr string, connect []byte) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(connect); err != nil {
		b.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := packetcodec.NewReader(nc, 1<<16)
	defer r.Close()
	f, err := r.ReadFrame()
	if err != nil || f.Type != packets.CONNACK || f.Body[1] != 0 {
		b.Fatalf("CONNACK: %v % x", err, f.Raw)
	}
	_, _ = nc.Write([]byte{0xe0, 0x00})
}

// BenchmarkConnectRoundTrip measures a whole JWT CONNECT → CONNACK through
// the proxy to a real Mosquitto (token verification, upstream dial and
// CONNECT included), against an anonymous CONNECT straight to Mosquitto.
func BenchmarkConnectRoundTrip(b *testing.B) {
	// Logging as deployed: the process log at info, the audit log on.
	s := newAuthStack(b, func(_ *proxy.Config, o *proxy.Options, _ *token.Config) {
		o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
		o.Audit = io.Discard
	})
	tok, err := s.idp.MintEntra(testTenant, principalA, 2, nil, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("proxy-jwt", func(b *testing.B) {
		connect := harness.ConnectV5{ClientID: "bench", CleanStart: true, KeepAlive: 30, Props: authProps("OAUTH2-JWT", tok)}.Bytes()
		for b.Loop() {
			connectRoundTrip(b, s.px.Addr, connect)
		}
	})
	b.Run("direct-anonymous", func(b *testing.B) {
		connect := harness.ConnectV5{ClientID: "bench", CleanStart: true, KeepAlive: 30}.Bytes()
		for b.Loop() {
			connectRoundTrip(b, s.broker.Addr, connect)
		}
	})
}
