package test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/mqtt-authproxy/mqtt-authproxy/proxy"
	"github.com/mqtt-authproxy/mqtt-authproxy/test/harness"
)

// anonymousStack starts Mosquitto and a proxy admitting anonymous clients
// without a policy: the foundation's relay behaviour, free of auth.
func anonymousStack(t *testing.T, mutate ...func(*proxy.Config, *proxy.Options)) (*harness.Mosquitto, *harness.Proxy) {
	t.Helper()
	broker := harness.StartMosquitto(t)
	cfg := harness.UpstreamConfig(broker.Addr)
	opts := proxy.Options{AllowAnonymous: true}
	for _, m := range mutate {
		m(&cfg, &opts)
	}
	return broker, harness.StartProxy(t, cfg, opts)
}

func subscribe(t *testing.T, c *harness.Client, filter string, qos byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
	if err != nil {
		t.Fatalf("subscribe %q: %v", filter, err)
	}
	if len(ack.Reasons) != 1 || ack.Reasons[0] >= 0x80 {
		t.Fatalf("subscribe %q: SUBACK reasons %v", filter, ack.Reasons)
	}
}

func publish(t *testing.T, c *harness.Client, p *paho.Publish) *paho.PublishResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Publish(ctx, p)
	if err != nil {
		t.Fatalf("publish %q QoS %d: %v", p.Topic, p.QoS, err)
	}
	return resp
}

// SPEC 4: QoS 0/1/2 end to end through the proxy, QoS 2 included.
func TestPubSubEachQoS(t *testing.T) {
	_, px := anonymousStack(t)
	sub := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "sub", CleanStart: true})
	subscribe(t, sub, "qos/#", 2)
	pub := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "pub", CleanStart: true})
	for qos := byte(0); qos <= 2; qos++ {
		publish(t, pub, &paho.Publish{Topic: "qos/" + string('0'+qos), QoS: qos, Payload: []byte{'m', '0' + qos}})
	}
	got := sub.WaitMessages(3, 5*time.Second)
	if len(got) != 3 {
		t.Fatalf("subscriber got %d messages, want 3", len(got))
	}
	for i, m := range got {
		want := []byte{'m', '0' + byte(i)}
		if m.QoS != byte(i) || !bytes.Equal(m.Payload, want) {
			t.Errorf("message %d: QoS %d payload %q, want QoS %d payload %q", i, m.QoS, m.Payload, i, want)
		}
	}
}

func TestRetainedMessage(t *testing.T) {
	_, px := anonymousStack(t)
	pub := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "pub", CleanStart: true})
	publish(t, pub, &paho.Publish{Topic: "state/door", QoS: 1, Retain: true, Payload: []byte("open")})
	sub := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "late", CleanStart: true})
	subscribe(t, sub, "state/#", 1)
	got := sub.WaitMessages(1, 5*time.Second)
	if len(got) != 1 || !got[0].Retain || string(got[0].Payload) != "open" {
		t.Fatalf("late subscriber got %+v, want one retained 'open'", got)
	}
}

func TestLargePayload256KiB(t *testing.T) {
	_, px := anonymousStack(t)
	sub := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "sub", CleanStart: true})
	subscribe(t, sub, "big", 1)
	pub := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "pub", CleanStart: true})
	payload := make([]byte, 256*1024)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	publish(t, pub, &paho.Publish{Topic: "big", QoS: 1, Payload: payload})
	got := sub.WaitMessages(1, 10*time.Second)
	if len(got) != 1 || !bytes.Equal(got[0].Payload, payload) {
		t.Fatalf("256 KiB payload did not arrive intact (got %d messages)", len(got))
	}
}

// [MQTT-3.1.2-4]: a session with Clean Start 0 is resumed, and QoS 1
// messages published while the client was away are delivered.
func TestSessionResumption(t *testing.T) {
	_, px := anonymousStack(t)
	opts := harness.ClientOptions{ClientID: "durable", CleanStart: true, SessionExp: 300, NoAutoClose: true}
	c := harness.MustConnect(t, px.Addr, opts)
	subscribe(t, c, "queue/#", 1)
	if err := c.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	pub := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "pub", CleanStart: true})
	publish(t, pub, &paho.Publish{Topic: "queue/1", QoS: 1, Payload: []byte("while away")})

	opts.CleanStart = false
	opts.NoAutoClose = false
	c2 := harness.MustConnect(t, px.Addr, opts)
	if !c2.Connack.SessionPresent {
		t.Errorf("CONNACK Session Present = false, want true")
	}
	got := c2.WaitMessages(1, 5*time.Second)
	if len(got) != 1 || string(got[0].Payload) != "while away" {
		t.Fatalf("resumed session got %d messages, want the queued one", len(got))
	}
}

// SPEC 4: a dead client ends the upstream without DISCONNECT, so the broker
// publishes the Will.
func TestWillOnAbruptClose(t *testing.T) {
	broker, px := anonymousStack(t)
	watcher := harness.MustConnect(t, broker.Addr, harness.ClientOptions{ClientID: "watcher", CleanStart: true})
	subscribe(t, watcher, "wills/#", 1)

	raw := harness.DialRaw(t, px.Addr)
	raw.Write(harness.ConnectV5{ClientID: "dying", CleanStart: true, KeepAlive: 60,
		Will: &harness.RawWill{Topic: "wills/dying", Payload: "gone", QoS: 1}}.Bytes())
	expectConnack(t, raw, 0)
	raw.Close()

	got := watcher.WaitMessages(1, 5*time.Second)
	if len(got) != 1 || string(got[0].Payload) != "gone" {
		t.Fatalf("watcher got %d wills, want 1", len(got))
	}
}

// A packet the proxy has forwarded is written out before it waits for the
// rest of the client's next, incomplete packet: a slow sender's earlier
// messages are not held back by its later ones, small or larger than the
// proxy's 16 KiB read buffer.
func TestForwardedPacketNotHeldBehindPartialPacket(t *testing.T) {
	for _, size := range []int{14, 40 << 10} {
		t.Run(fmt.Sprintf("next packet %d bytes", size), func(t *testing.T) {
			broker, px := anonymousStack(t)
			watcher := harness.MustConnect(t, broker.Addr, harness.ClientOptions{ClientID: "watcher", CleanStart: true})
			subscribe(t, watcher, "partial/#", 0)

			raw := harness.DialRaw(t, px.Addr)
			raw.Write(harness.ConnectV5{ClientID: "slow", CleanStart: true, KeepAlive: 60}.Bytes())
			expectConnack(t, raw, 0)
			publish := func(topic string, payload []byte) []byte {
				body := harness.AppendString(nil, topic)
				body = append(body, 0) // no properties
				return harness.Packet(0x30, append(body, payload...))
			}
			first, second := publish("partial/1", []byte("complete")), publish("partial/2", bytes.Repeat([]byte{'x'}, size))
			cut := len(second) / 2
			raw.Write(append(first, second[:cut]...)) // one write: a whole PUBLISH and part of the next
			if got := watcher.WaitMessages(1, 5*time.Second); len(got) != 1 || string(got[0].Payload) != "complete" {
				t.Fatalf("the complete PUBLISH did not arrive while the next one was partial (got %d messages)", len(got))
			}
			raw.Write(second[cut:])
			if got := watcher.WaitMessages(2, 5*time.Second); len(got) != 2 || len(got[1].Payload) != size {
				t.Fatalf("got %d messages after the rest arrived, want 2", len(got))
			}
		})
	}
}

// STYLE §1.2: the two-byte DISCONNECT e0 00 (what libmosquitto sends) is a
// normal disconnect and discards the Will.
func TestShortDisconnectDiscardsWill(t *testing.T) {
	broker, px := anonymousStack(t)
	watcher := harness.MustConnect(t, broker.Addr, harness.ClientOptions{ClientID: "watcher", CleanStart: true})
	subscribe(t, watcher, "wills/#", 1)

	raw := harness.DialRaw(t, px.Addr)
	raw.Write(harness.ConnectV5{ClientID: "polite", CleanStart: true, KeepAlive: 60,
		Will: &harness.RawWill{Topic: "wills/polite", Payload: "should not appear", QoS: 1}}.Bytes())
	expectConnack(t, raw, 0)
	raw.Write([]byte{0xe0, 0x00})
	if f, err := raw.ReadFrame(5 * time.Second); err == nil {
		t.Fatalf("connection not closed after DISCONNECT: got % x", f.Raw)
	}
	// A control message published after the disconnect arrives; the Will,
	// had it been published, would have arrived before it.
	ctl := harness.MustConnect(t, broker.Addr, harness.ClientOptions{ClientID: "ctl", CleanStart: true})
	publish(t, ctl, &paho.Publish{Topic: "wills/control", QoS: 1, Payload: []byte("control")})
	// Wait for a second message too: a wrongly published Will could arrive
	// after the control message.
	got := watcher.WaitMessages(2, 2*time.Second)
	if len(got) != 1 || got[0].Topic != "wills/control" {
		var topics []string
		for _, m := range got {
			topics = append(topics, m.Topic)
		}
		t.Fatalf("watcher got %v, want only the control message", topics)
	}
}

// paho's CONNECT encoder drops Will properties (STYLE §1.4); the proxy
// must deliver them intact.
func TestWillPropertiesArriveIntact(t *testing.T) {
	broker, px := anonymousStack(t)
	watcher := harness.MustConnect(t, broker.Addr, harness.ClientOptions{ClientID: "watcher", CleanStart: true})
	subscribe(t, watcher, "wills/#", 1)

	var props []byte
	props = append(props, packets.PropPayloadFormat, 1)
	props = append(props, packets.PropMessageExpiry, 0, 0, 0x0e, 0x10) // 3600 s
	props = harness.AppendString(append(props, packets.PropContentType), "application/json")
	props = harness.AppendString(append(props, packets.PropResponseTopic), "replies/x")
	props = harness.AppendString(append(props, packets.PropCorrelationData), "corr-1")
	props = harness.AppendString(harness.AppendString(append(props, packets.PropUser), "site"), "lab-7")

	raw := harness.DialRaw(t, px.Addr)
	raw.Write(harness.ConnectV5{ClientID: "props", CleanStart: true, KeepAlive: 60,
		Will: &harness.RawWill{Topic: "wills/props", Payload: `{"state":"lost"}`, QoS: 1, Props: props}}.Bytes())
	expectConnack(t, raw, 0)
	raw.Close()

	got := watcher.WaitMessages(1, 5*time.Second)
	if len(got) != 1 {
		t.Fatalf("watcher got %d wills, want 1", len(got))
	}
	p := got[0].Properties
	switch {
	case p == nil:
		t.Fatal("will arrived without properties")
	case p.ContentType != "application/json":
		t.Errorf("content type %q, want application/json", p.ContentType)
	case p.PayloadFormat == nil || *p.PayloadFormat != 1:
		t.Errorf("payload format %v, want 1", p.PayloadFormat)
	case p.MessageExpiry == nil || *p.MessageExpiry == 0 || *p.MessageExpiry > 3600:
		t.Errorf("message expiry %v, want (0, 3600]", p.MessageExpiry)
	case p.ResponseTopic != "replies/x" || string(p.CorrelationData) != "corr-1":
		t.Errorf("response topic %q correlation %q", p.ResponseTopic, p.CorrelationData)
	case len(p.User) != 1 || p.User[0].Key != "site" || p.User[0].Value != "lab-7":
		t.Errorf("user properties %v, want site=lab-7", p.User)
	}
}

// SPEC 4: a packet above the maximum packet size gets DISCONNECT 0x95.
func TestOversizePacket(t *testing.T) {
	_, px := anonymousStack(t)
	raw := harness.DialRaw(t, px.Addr)
	raw.Write(harness.ConnectV5{ClientID: "big", CleanStart: true, KeepAlive: 60}.Bytes())
	ack := expectConnack(t, raw, 0)
	if mps := ack.Properties.MaximumPacketSize; mps == nil || *mps != 512*1024 {
		t.Errorf("CONNACK Maximum Packet Size %v, want 524288", mps)
	}
	// Only the header is sent: the proxy must refuse before reading (or
	// allocating) the body.
	hdr := harness.AppendVBI([]byte{0x30}, 600*1024)
	raw.Write(hdr)
	expectDisconnect(t, raw, packets.DisconnectPacketTooLarge)
}

// SPEC 2: MQTT 3.1.1 gets the v3 CONNACK return code 0x01.
func TestV311ClientRefused(t *testing.T) {
	_, px := anonymousStack(t)
	raw := harness.DialRaw(t, px.Addr)
	body := harness.AppendString(nil, "MQTT")
	body = append(body, 4, 0x02, 0, 60)
	body = harness.AppendString(body, "old-client")
	raw.Write(harness.Packet(0x10, body))
	got, _ := raw.ReadRaw(16, 5*time.Second)
	if want := []byte{0x20, 0x02, 0x00, 0x01}; !bytes.Equal(got, want) {
		t.Fatalf("v3.1.1 CONNECT answered % x, want % x", got, want)
	}
}

// countingDialer counts upstream dials.
type countingDialer struct {
	n atomic.Int32
	d net.Dialer
}

func (c *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.n.Add(1)
	return c.d.DialContext(ctx, network, addr)
}

// SPEC 2, 4: a socket that never sends CONNECT is closed after the connect
// timeout without a reply and costs the broker nothing.
func TestNoConnectTimesOutWithoutUpstreamDial(t *testing.T) {
	dialer := &countingDialer{}
	_, px := anonymousStack(t, func(c *proxy.Config, o *proxy.Options) {
		c.Limits.ConnectTimeout = 300 * time.Millisecond
		o.Dialer = dialer
	})
	raw := harness.DialRaw(t, px.Addr)
	start := time.Now()
	got, err := raw.ReadRaw(16, 5*time.Second)
	if len(got) != 0 || err == nil {
		t.Fatalf("silent client got % x, err %v; want close without reply", got, err)
	}
	if waited := time.Since(start); waited > 4*time.Second {
		t.Errorf("closed after %s, want about the 300ms connect timeout", waited)
	}
	if n := dialer.n.Load(); n != 0 {
		t.Errorf("upstream dialled %d times for a client that never sent CONNECT", n)
	}
}

// SPEC 2: upstream unreachable → CONNACK 0x88.
func TestUpstreamDownConnack88(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	cfg := harness.UpstreamConfig(dead)
	px := harness.StartProxy(t, cfg, proxy.Options{AllowAnonymous: true})
	c, err := harness.Connect(t, px.Addr, harness.ClientOptions{ClientID: "x", CleanStart: true})
	if err == nil || c.Connack == nil || c.Connack.ReasonCode != packets.ConnackServerUnavailable {
		t.Fatalf("connect with upstream down: err %v, CONNACK %+v; want 0x88", err, c.Connack)
	}
}

// upstream.address "unix:PATH": the proxy reaches a broker that listens only
// on a Unix socket (the cheaper sidecar set-up, BENCHMARKS.md), and a
// missing socket is the usual CONNACK 0x88.
func TestUpstreamOverUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mosquitto.sock")
	broker := harness.StartMosquitto(t, "listener 0 "+sock)
	px := harness.StartProxy(t, harness.UpstreamConfig("unix:"+sock), proxy.Options{AllowAnonymous: true})
	sub := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "sub", CleanStart: true})
	subscribe(t, sub, "uds/#", 1)
	pub := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "pub", CleanStart: true})
	publish(t, pub, &paho.Publish{Topic: "uds/1", QoS: 1, Payload: []byte("over a socket")})
	if got := sub.WaitMessages(1, 5*time.Second); len(got) != 1 || string(got[0].Payload) != "over a socket" {
		t.Fatalf("subscriber got %v, want the one message", got)
	}
	// Mosquitto names the listener a client came in on: both clients
	// must have reached it through the socket, not its TCP port.
	if out := broker.Output(); strings.Count(out, "connected from "+sock) != 2 {
		t.Errorf("broker log does not show both clients on %s:\n%s", sock, out)
	}

	gone := harness.StartProxy(t, harness.UpstreamConfig("unix:"+filepath.Join(t.TempDir(), "none.sock")), proxy.Options{AllowAnonymous: true})
	c, err := harness.Connect(t, gone.Addr, harness.ClientOptions{ClientID: "x", CleanStart: true})
	if err == nil || c.Connack == nil || c.Connack.ReasonCode != packets.ConnackServerUnavailable {
		t.Fatalf("connect with no socket: err %v, CONNACK %+v; want 0x88", err, c.Connack)
	}
}

// SPEC 4: a dead upstream ends the client with DISCONNECT 0x88.
func TestUpstreamDiesMidSession(t *testing.T) {
	broker, px := anonymousStack(t)
	c := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "x", CleanStart: true, NoAutoClose: true})
	broker.Stop()
	d, closed := c.WaitClosed(5 * time.Second)
	if !closed || d == nil || d.ReasonCode != 0x88 {
		t.Fatalf("after broker death: closed %v, DISCONNECT %+v; want DISCONNECT 0x88", closed, d)
	}
}

// SPEC 6: shutdown sends DISCONNECT 0x8B to every client.
func TestShutdownSendsServerShuttingDown(t *testing.T) {
	_, px := anonymousStack(t)
	c := harness.MustConnect(t, px.Addr, harness.ClientOptions{ClientID: "x", CleanStart: true, NoAutoClose: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := px.Server.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	d, closed := c.WaitClosed(5 * time.Second)
	if !closed || d == nil || d.ReasonCode != packets.DisconnectServerShuttingDown {
		t.Fatalf("closed %v, DISCONNECT %+v; want 0x8B", closed, d)
	}
}

// SPEC 4: packets only a server may send are a protocol error.
func TestServerOnlyPacketFromClient(t *testing.T) {
	_, px := anonymousStack(t)
	raw := harness.DialRaw(t, px.Addr)
	raw.Write(harness.ConnectV5{ClientID: "bad", CleanStart: true, KeepAlive: 60}.Bytes())
	expectConnack(t, raw, 0)
	raw.Write([]byte{0xd0, 0x00}) // PINGRESP
	expectDisconnect(t, raw, packets.DisconnectProtocolError)
}

// [MQTT-3.3.4-6]: a PUBLISH from a client must not carry a Subscription
// Identifier; the proxy answers DISCONNECT 0x82 instead of forwarding it.
func TestClientPublishWithSubscriptionIdentifier(t *testing.T) {
	_, px := anonymousStack(t)
	raw := harness.DialRaw(t, px.Addr)
	raw.Write(harness.ConnectV5{ClientID: "subid", CleanStart: true, KeepAlive: 60}.Bytes())
	expectConnack(t, raw, 0)
	// PUBLISH QoS 0, topic "a", properties: Subscription Identifier 1.
	raw.Write([]byte{0x30, 0x06, 0x00, 0x01, 'a', 0x02, packets.PropSubscriptionIdentifier, 0x01})
	expectDisconnect(t, raw, packets.DisconnectProtocolError)
}
