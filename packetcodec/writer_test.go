package packetcodec

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/eclipse/paho.golang/packets"
)

// TestWritePacket checks the bytes written for locally made answers and
// that the packet passed in is not modified (STYLE §1.9).
func TestWritePacket(t *testing.T) {
	authCP := packets.NewControlPacket(packets.AUTH) // paho sets reserved flag 1 here
	authCP.Content.(*packets.Auth).ReasonCode = packets.AuthSuccess
	pubCP := &packets.ControlPacket{FixedHeader: packets.FixedHeader{Type: packets.PUBLISH}, Content: &packets.Publish{Topic: "a", QoS: 1, PacketID: 1, Retain: true, Properties: &packets.Properties{}}}
	tests := []struct {
		name string
		p    io.WriterTo
		want []byte
	}{
		{
			name: "PUBACK 0x87 with the client's packet id (SPEC 4)",
			p:    &packets.Puback{PacketID: 0x0102, ReasonCode: packets.PubackNotAuthorized, Properties: &packets.Properties{}},
			want: []byte{0x40, 0x04, 0x01, 0x02, 0x87, 0x00},
		},
		{
			name: "DISCONNECT 0x81",
			p:    &packets.Disconnect{ReasonCode: packets.DisconnectMalformedPacket, Properties: &packets.Properties{}},
			want: []byte{0xe0, 0x02, 0x81, 0x00},
		},
		{
			name: "AUTH from NewControlPacket gets flags 0000 [MQTT-2.1.3-1]",
			p:    authCP,
			want: []byte{0xf0, 0x02, 0x00, 0x00},
		},
		{
			name: "PUBLISH ControlPacket keeps its FixedHeader.Flags",
			p:    pubCP,
			want: []byte{0x33, 0x06, 0x00, 0x01, 'a', 0x00, 0x01, 0x00},
		},
		{
			name: "SUBACK",
			p:    &packets.Suback{PacketID: 3, Reasons: []byte{0x87}, Properties: &packets.Properties{}},
			want: []byte{0x90, 0x04, 0x00, 0x03, 0x00, 0x87},
		},
		{
			name: "PUBREL flags 0010",
			p:    &packets.Pubrel{PacketID: 3, Properties: &packets.Properties{}},
			want: []byte{0x62, 0x03, 0x00, 0x03, 0x00},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := NewWriter(&out)
			var before byte
			if cp, ok := tt.p.(*packets.ControlPacket); ok {
				before = cp.Flags
			}
			if err := w.WritePacket(tt.p); err != nil {
				t.Fatal(err)
			}
			if out.Len() != 0 {
				t.Fatalf("wrote %d bytes before Flush, want 0", out.Len())
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), tt.want) {
				t.Fatalf("got % x, want % x", out.Bytes(), tt.want)
			}
			if cp, ok := tt.p.(*packets.ControlPacket); ok && cp.Flags != before {
				t.Fatalf("FixedHeader.Flags: got %#x after WritePacket, want %#x unchanged", cp.Flags, before)
			}
		})
	}
}

// TestWritePacketTooLong: a 70,000-byte field is an error, and nothing is
// written (STYLE §1.7: paho truncates it).
func TestWritePacketTooLong(t *testing.T) {
	long := strings.Repeat("a", 70_000)
	tests := []struct {
		name string
		p    io.WriterTo
	}{
		{"publish topic", &packets.Publish{Topic: long, Properties: &packets.Properties{}}},
		{"reason string", &packets.Disconnect{Properties: &packets.Properties{ReasonString: long}}},
		{"subscribe filter", &packets.Subscribe{PacketID: 1, Subscriptions: []packets.SubOptions{{Topic: long}}}},
		{"unsubscribe filter", &packets.Unsubscribe{PacketID: 1, Topics: []string{long}}},
		{"user property", &packets.Connack{Properties: &packets.Properties{User: []packets.User{{Key: long}}}}},
		{"connect client id", &packets.Connect{ClientID: long}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := NewWriter(&out)
			if err := w.WritePacket(tt.p); !errors.Is(err, ErrFieldTooLong) {
				t.Fatalf("got %v, want ErrFieldTooLong", err)
			}
			if err := w.Flush(); err != nil || out.Len() != 0 {
				t.Fatalf("got %d bytes written, %v, want nothing", out.Len(), err)
			}
		})
	}
}

func TestWritePacketRefusesInvalid(t *testing.T) {
	tests := []struct {
		name string
		p    io.WriterTo
	}{
		{"QoS 3 publish", &packets.Publish{Topic: "a", QoS: 3}},
		{"subscription identifier beyond 4 bytes", &packets.Publish{Topic: "a", Properties: &packets.Properties{SubscriptionIdentifier: new(int(1 << 28))}}},
		{"control packet without content", &packets.ControlPacket{}},
		{"header type mismatch", &packets.ControlPacket{FixedHeader: packets.FixedHeader{Type: packets.PUBACK}, Content: &packets.Pubrec{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := NewWriter(io.Discard).WritePacket(tt.p); err == nil {
				t.Fatal("got nil, want an error")
			}
		})
	}
}

// TestWritePacketConnectKeepsWill: a *Connect handed to WritePacket goes
// through EncodeConnect, not paho's embedded WriteTo (STYLE §1.4).
func TestWritePacketConnectKeepsWill(t *testing.T) {
	raw := vectors[indexOf(t, "CONNECT with Will properties, auth, user name and password")].raw
	c, err := DecodeConnect(mustFrame(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w := NewWriter(&out)
	if err := w.WritePacket(c); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), raw) {
		t.Fatalf("got  % x\nwant % x", out.Bytes(), raw)
	}
}

// TestWriterConcurrent: packets from several goroutines never interleave
// (STYLE 24). Run with -race.
func TestWriterConcurrent(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				var err error
				switch i % 3 {
				case 0:
					err = w.Write(publishPacket(g*100+i, uint16(i+1)))
				case 1:
					err = w.WritePacket(&packets.Puback{PacketID: uint16(i + 1), Properties: &packets.Properties{}})
				default:
					err = w.WriteAndFlush([]byte{0xc0, 0x00})
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&out, 0)
	n := 0
	for {
		f, err := r.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if err := Validate(f); err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		n++
	}
	if n != writers*each {
		t.Fatalf("got %d packets, want %d", n, writers*each)
	}
}
