package harness

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// Client is a paho.golang client with its received messages and the
// server's DISCONNECT, if any.
type Client struct {
	*paho.Client
	Connack *paho.Connack

	mu         sync.Mutex
	messages   []*paho.Publish
	notify     chan struct{}
	disconnect *paho.Disconnect
	closed     chan struct{}
}

// ClientOptions shape a test client's CONNECT.
type ClientOptions struct {
	ClientID    string
	CleanStart  bool
	KeepAlive   uint16
	AuthMethod  string
	AuthData    []byte
	Username    string
	Password    []byte
	Will        *paho.WillMessage
	WillProps   *paho.WillProperties
	SessionExp  uint32
	Properties  *paho.ConnectProperties
	ManualAcks  bool
	NoAutoClose bool
	// NoProblemInfo sends Request Problem Information = 0 (paho's own
	// default); the harness asks for reason strings unless it is set.
	NoProblemInfo bool
}

// Connect dials addr and sends CONNECT; it returns the client and the
// CONNACK (also on refusal, with err set).
func Connect(t testing.TB, addr string, o ClientOptions) (*Client, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return ConnectOver(t, nc, o)
}

// ConnectOver is Connect over an established connection (TLS, WebSocket).
func ConnectOver(t testing.TB, nc net.Conn, o ClientOptions) (*Client, error) {
	t.Helper()
	// paho writes from several goroutines and, on conns that are not
	// *net.TCPConn, one packet in several Write calls; paho documents this
	// wrapper for such conns.
	nc = packets.NewThreadSafeConn(nc)
	c := &Client{notify: make(chan struct{}, 1), closed: make(chan struct{})}
	var once sync.Once
	markClosed := func() { once.Do(func() { close(c.closed) }) }
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn:                       nc,
		AuthHandler:                noopAuther{},
		EnableManualAcknowledgment: o.ManualAcks,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			c.mu.Lock()
			c.messages = append(c.messages, pr.Packet)
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			c.mu.Lock()
			c.disconnect = d
			c.mu.Unlock()
			markClosed()
		},
		OnClientError: func(error) { markClosed() },
	})
	cp := &paho.Connect{
		ClientID:       o.ClientID,
		CleanStart:     o.CleanStart,
		KeepAlive:      o.KeepAlive,
		Properties:     o.Properties,
		WillMessage:    o.Will,
		WillProperties: o.WillProps,
	}
	if cp.Properties == nil {
		cp.Properties = &paho.ConnectProperties{}
	}
	cp.Properties.RequestProblemInfo = !o.NoProblemInfo
	if o.SessionExp > 0 {
		se := o.SessionExp
		cp.Properties.SessionExpiryInterval = &se
	}
	if o.AuthMethod != "" {
		cp.Properties.AuthMethod = o.AuthMethod
		cp.Properties.AuthData = o.AuthData
	}
	if o.Username != "" {
		cp.Username, cp.UsernameFlag = o.Username, true
	}
	if o.Password != nil {
		cp.Password, cp.PasswordFlag = o.Password, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := c.Client.Connect(ctx, cp)
	c.Connack = ack
	if err == nil && !o.NoAutoClose {
		t.Cleanup(func() { _ = c.Client.Disconnect(&paho.Disconnect{ReasonCode: 0}) })
	}
	return c, err
}

// MustConnect is Connect failing the test on error.
func MustConnect(t testing.TB, addr string, o ClientOptions) *Client {
	t.Helper()
	c, err := Connect(t, addr, o)
	if err != nil {
		code := -1
		reason := ""
		if c.Connack != nil {
			code = int(c.Connack.ReasonCode)
			if c.Connack.Properties != nil {
				reason = c.Connack.Properties.ReasonString
			}
		}
		t.Fatalf("connect to %s: %v (CONNACK 0x%02x %q)", addr, err, code, reason)
	}
	return c
}

// Messages returns the messages received so far.
func (c *Client) Messages() []*paho.Publish {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*paho.Publish(nil), c.messages...)
}

// WaitMessages waits until n messages arrived or the timeout passes, and
// returns what arrived.
func (c *Client) WaitMessages(n int, timeout time.Duration) []*paho.Publish {
	deadline := time.After(timeout)
	for {
		if m := c.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-c.notify:
		case <-deadline:
			return c.Messages()
		}
	}
}

// WaitClosed waits until the server disconnected the client or the
// connection failed; it returns the server's DISCONNECT (nil if none).
func (c *Client) WaitClosed(timeout time.Duration) (*paho.Disconnect, bool) {
	select {
	case <-c.closed:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.disconnect, true
	case <-time.After(timeout):
		return nil, false
	}
}

// noopAuther satisfies paho, which dereferences its AuthHandler whenever a
// CONNACK echoes an Authentication Method. OAUTH2-JWT is single-step, so
// there is never an AUTH challenge to answer.
type noopAuther struct{}

func (noopAuther) Authenticate(a *paho.Auth) *paho.Auth { return a }
func (noopAuther) Authenticated()                       {}
