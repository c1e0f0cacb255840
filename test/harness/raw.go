package harness

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// RawConn is a byte-level MQTT connection for tests that must send what no
// well-behaved client library sends.
type RawConn struct {
	t  testing.TB
	nc net.Conn
	r  *packetcodec.Reader
}

// DialRaw opens a TCP connection to addr.
func DialRaw(t testing.TB, addr string) *RawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &RawConn{t: t, nc: nc, r: packetcodec.NewReader(nc, 1<<28)}
}

// Write sends b.
func (c *RawConn) Write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// TryWrite sends b and returns the error, for use off the test goroutine.
func (c *RawConn) TryWrite(b []byte) (int, error) { return c.nc.Write(b) }

// Close closes the socket without DISCONNECT.
func (c *RawConn) Close() { c.nc.Close() }

// ReadFrame reads one frame within timeout.
func (c *RawConn) ReadFrame(timeout time.Duration) (packetcodec.Frame, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	return c.r.ReadFrame()
}

// ReadPacket reads and decodes one packet within timeout.
func (c *RawConn) ReadPacket(timeout time.Duration) (*packets.ControlPacket, error) {
	f, err := c.ReadFrame(timeout)
	if err != nil {
		return nil, err
	}
	return packetcodec.Decode(f)
}

// ReadRaw reads whatever arrives within timeout (at most n bytes).
func (c *RawConn) ReadRaw(n int, timeout time.Duration) ([]byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	b := make([]byte, n)
	k, err := c.nc.Read(b)
	return b[:k], err
}

// Packet builds an MQTT packet from its first byte and body.
func Packet(first byte, body []byte) []byte {
	out := []byte{first}
	out = AppendVBI(out, len(body))
	return append(out, body...)
}

// AppendVBI appends a variable byte integer.
func AppendVBI(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// AppendString appends an MQTT UTF-8 string (or binary data).
func AppendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// ConnectV5 builds a v5 CONNECT. props and willProps are raw property
// blocks (without their length); will is nil for no Will.
type ConnectV5 struct {
	ClientID   string
	CleanStart bool
	KeepAlive  uint16
	Props      []byte
	Will       *RawWill
	Username   *string
	Password   *string
}

// RawWill is a Will message with raw properties.
type RawWill struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
	Props   []byte
}

// Bytes encodes the CONNECT.
func (c ConnectV5) Bytes() []byte {
	var flags byte
	if c.CleanStart {
		flags |= 0x02
	}
	if c.Will != nil {
		flags |= 0x04 | c.Will.QoS<<3
		if c.Will.Retain {
			flags |= 0x20
		}
	}
	if c.Username != nil {
		flags |= 0x80
	}
	if c.Password != nil {
		flags |= 0x40
	}
	b := AppendString(nil, "MQTT")
	b = append(b, 5, flags)
	b = binary.BigEndian.AppendUint16(b, c.KeepAlive)
	b = AppendVBI(b, len(c.Props))
	b = append(b, c.Props...)
	b = AppendString(b, c.ClientID)
	if c.Will != nil {
		b = AppendVBI(b, len(c.Will.Props))
		b = append(b, c.Will.Props...)
		b = AppendString(b, c.Will.Topic)
		b = AppendString(b, c.Will.Payload)
	}
	if c.Username != nil {
		b = AppendString(b, *c.Username)
	}
	if c.Password != nil {
		b = AppendString(b, *c.Password)
	}
	return Packet(0x10, b)
}
