package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
)

// authMethod is the MQTT v5 Authentication Method the proxy accepts (SPEC 2).
const authMethod = "OAUTH2-JWT"

// maxAckSize bounds what readAck accepts: the bench only ever reads CONNACKs,
// which are small.
const maxAckSize = 64 << 10

// connectPacket encodes a clean-start MQTT v5 CONNECT. A non-empty token is
// sent as OAUTH2-JWT Authentication Data; an empty one gives an anonymous
// CONNECT.
func connectPacket(clientID, token string, keepAlive uint16) []byte {
	cp := &packets.Connect{
		ProtocolName:    "MQTT",
		ProtocolVersion: 5,
		CleanStart:      true,
		KeepAlive:       keepAlive,
		ClientID:        clientID,
		Properties:      &packets.Properties{},
	}
	if token != "" {
		cp.Properties.AuthMethod = authMethod
		cp.Properties.AuthData = []byte(token)
	}
	var b bytes.Buffer
	_, _ = cp.WriteTo(&b) // writing to a bytes.Buffer cannot fail
	return b.Bytes()
}

// disconnectPacket is a normal v5 DISCONNECT (reason 0x00, no properties).
const disconnectPacket = "\xe0\x00"

// rawConnect writes connect on nc and reads the CONNACK within timeout; it
// fails unless the CONNACK carries reason 0x00. It reads with its own
// bounded framing rather than packets.ReadPacket (STYLE 1.1).
func rawConnect(nc net.Conn, connect []byte, timeout time.Duration) error {
	if err := nc.SetDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	if _, err := nc.Write(connect); err != nil {
		return fmt.Errorf("write CONNECT: %w", err)
	}
	typ, body, err := readPacket(nc)
	if err != nil {
		return fmt.Errorf("read CONNACK: %w", err)
	}
	if typ != packets.CONNACK || len(body) < 2 {
		return fmt.Errorf("want CONNACK, got packet type %d (%d bytes)", typ, len(body))
	}
	if body[1] != packets.ConnackSuccess {
		return fmt.Errorf("CONNACK reason 0x%02x", body[1])
	}
	return nc.SetDeadline(time.Time{})
}

// readPacket reads one MQTT packet: its type and its body (variable header
// and payload), refusing bodies over maxAckSize.
func readPacket(r io.Reader) (byte, []byte, error) {
	var hdr [1]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return 0, nil, errors.New("remaining length longer than 4 bytes")
		}
		var b [1]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n += int(b[0]&0x7f) * mult
		if b[0]&0x80 == 0 {
			break
		}
		mult *= 128
	}
	if n > maxAckSize {
		return 0, nil, fmt.Errorf("packet of %d bytes exceeds %d", n, maxAckSize)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return hdr[0] >> 4, body, nil
}

// bufferedConn adapts a TCP connection to paho for load generation.
//
// Reads go through a bufio.Reader: paho reads the fixed header a byte at a
// time, which would otherwise cost a syscall per byte and make the load
// generator, not the target, the bottleneck. Only paho's reader goroutine
// reads, so the buffer needs no lock.
//
// Writes are serialised and coalesced: paho's ControlPacket.WriteTo locks a
// writer that implements sync.Locker and then writes a packet in several
// Write calls (a wrapper hides TCPConn's writev). Without the lock, packets
// of concurrent Publish calls interleave on the wire (the broker answers
// DISCONNECT 0x81); with it, each packet is gathered and sent with one
// write at Unlock. A failed write is reported by the next Write.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader

	mu   sync.Mutex
	wbuf []byte
	werr error
}

func newBufferedConn(nc net.Conn) *bufferedConn {
	return &bufferedConn{Conn: nc, r: bufio.NewReaderSize(nc, 64<<10)}
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Lock starts a packet; paho holds it for the packet's Write calls.
func (c *bufferedConn) Lock() { c.mu.Lock() }

// Unlock sends the gathered packet and ends it.
func (c *bufferedConn) Unlock() {
	if len(c.wbuf) > 0 && c.werr == nil {
		_, c.werr = c.Conn.Write(c.wbuf)
	}
	c.wbuf = c.wbuf[:0]
	c.mu.Unlock()
}

// Write gathers part of a packet; it must be called between Lock and Unlock
// (paho always does).
func (c *bufferedConn) Write(p []byte) (int, error) {
	if c.werr != nil {
		return 0, c.werr
	}
	c.wbuf = append(c.wbuf, p...)
	return len(p), nil
}

var _ sync.Locker = (*bufferedConn)(nil)

// noAuther is the paho AuthHandler for single-step OAUTH2-JWT: paho calls
// Authenticated on a CONNACK that echoes the method and panics if no handler
// is set; the proxy never sends AUTH 0x18 (continue).
type noAuther struct{}

func (noAuther) Authenticate(a *paho.Auth) *paho.Auth { return &paho.Auth{ReasonCode: 0x00} }
func (noAuther) Authenticated()                       {}

// clientOptions describes one paho client of the load generator.
type clientOptions struct {
	addr      string
	clientID  string
	token     string // "" for an anonymous CONNECT
	onPublish func(*paho.Publish)
	onLost    func(error) // the connection ended unexpectedly (nil: ignored)
}

// dialClient connects a paho MQTT v5 client and returns it once the CONNACK
// succeeded. The caller disconnects it.
func dialClient(ctx context.Context, o clientOptions) (*paho.Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", o.addr, err)
	}
	cfg := paho.ClientConfig{
		ClientID:    o.clientID,
		Conn:        newBufferedConn(nc),
		AuthHandler: noAuther{},
		OnServerDisconnect: func(d *paho.Disconnect) {
			lost(o.onLost, fmt.Errorf("%s: server sent DISCONNECT 0x%02x", o.clientID, d.ReasonCode))
		},
		OnClientError: func(err error) { lost(o.onLost, fmt.Errorf("%s: %w", o.clientID, err)) },
		PacketTimeout: 10 * time.Second,
	}
	if o.onPublish != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { o.onPublish(pr.Packet); return true, nil },
		}
	}
	c := paho.NewClient(cfg)
	// Request Problem Information makes the server explain a refusal.
	cp := &paho.Connect{ClientID: o.clientID, CleanStart: true, KeepAlive: 60, Properties: &paho.ConnectProperties{RequestProblemInfo: true}}
	if o.token != "" {
		cp.Properties.AuthMethod, cp.Properties.AuthData = authMethod, []byte(o.token)
	}
	ca, err := c.Connect(ctx, cp)
	if err != nil {
		_ = nc.Close()
		if ca != nil {
			return nil, fmt.Errorf("connect %s as %s: reason 0x%02x: %w", o.addr, o.clientID, ca.ReasonCode, err)
		}
		return nil, fmt.Errorf("connect %s as %s: %w", o.addr, o.clientID, err)
	}
	return c, nil
}

func lost(f func(error), err error) {
	if f != nil {
		f(err)
	}
}

// closeClient sends DISCONNECT 0x00 and waits (bounded) for paho to shut down.
func closeClient(c *paho.Client) {
	_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
	}
}
