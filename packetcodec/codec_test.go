package packetcodec

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/packets"
)

// decodeFrame runs the decoder the proxy would use for f's type.
func decodeFrame(f Frame) error {
	switch f.Type {
	case packets.CONNECT:
		_, err := DecodeConnect(f)
		return err
	case packets.PUBLISH:
		var p PublishView
		if err := ParsePublish(f, &p); err != nil {
			return err
		}
	}
	_, err := Decode(f)
	return err
}

// wantOutcome compares err with the vector's expected outcome.
func wantOutcome(t *testing.T, stage string, err error, v vector) {
	t.Helper()
	var pe *Error
	switch {
	case v.v3:
		if !errors.Is(err, ErrProtocolV3) {
			t.Fatalf("%s: got %v, want ErrProtocolV3", stage, err)
		}
	case v.code == 0:
		if err != nil {
			t.Fatalf("%s: got %v, want no error", stage, err)
		}
	case !errors.As(err, &pe):
		t.Fatalf("%s: got %v, want *Error with code 0x%02x", stage, err, v.code)
	case pe.Code != v.code:
		t.Fatalf("%s: got code 0x%02x (%v), want 0x%02x", stage, pe.Code, err, v.code)
	}
	if errors.Is(err, io.EOF) {
		t.Fatalf("%s: got an error matching io.EOF (%v): only a clean close may (STYLE 18)", stage, err)
	}
}

// TestVectors runs every golden vector through the Reader and the decoder
// for its type. // SPEC 4
func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			t.Logf("checks %s", v.ref)
			r := NewReader(bytes.NewReader(v.raw), 1<<16)
			f, err := r.ReadFrame()
			if v.framing {
				wantOutcome(t, "ReadFrame", err, v)
				if _, perr := ParseFrame(v.raw); v.code != 0x95 && !sameCode(perr, err) {
					t.Fatalf("ParseFrame: got %v, want the same code as ReadFrame (%v)", perr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadFrame: got %v, want a frame (is the vector's remaining length right?)", err)
			}
			if !bytes.Equal(f.Raw, v.raw) {
				t.Fatalf("Raw: got % x, want % x", f.Raw, v.raw)
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("second ReadFrame: got %v, want io.EOF", err)
			}
			wantOutcome(t, "decode", decodeFrame(f), v)
			wantOutcome(t, "Validate", Validate(f), v)
			if v.connectRoundTrip {
				c, err := DecodeConnect(f)
				if err != nil {
					t.Fatal(err)
				}
				got, err := EncodeConnect(nil, c)
				if err != nil {
					t.Fatalf("EncodeConnect: %v", err)
				}
				// STYLE §1.4: paho would drop the Will properties here.
				if !bytes.Equal(got, v.raw) {
					t.Fatalf("EncodeConnect(DecodeConnect(raw)):\ngot  % x\nwant % x", got, v.raw)
				}
			}
		})
	}
}

func sameCode(a, b error) bool {
	var pa, pb *Error
	return errors.As(a, &pa) && errors.As(b, &pb) && pa.Code == pb.Code
}

// TestDecodeSpecialForms checks the short forms paho gets wrong or that the
// proxy relies on, value by value.
func TestDecodeSpecialForms(t *testing.T) {
	tests := []struct {
		name  string
		raw   []byte
		check func(*packets.ControlPacket) (got, want any)
	}{
		{
			name: "DISCONNECT e0 00 is reason 0x00 (STYLE §1.2)",
			raw:  []byte{0xe0, 0x00},
			check: func(cp *packets.ControlPacket) (any, any) {
				return cp.Content.(*packets.Disconnect).ReasonCode, byte(0x00)
			},
		},
		{
			name: "DISCONNECT e0 01 8e is reason 0x8e",
			raw:  []byte{0xe0, 0x01, 0x8e},
			check: func(cp *packets.ControlPacket) (any, any) {
				return cp.Content.(*packets.Disconnect).ReasonCode, byte(0x8e)
			},
		},
		{
			name: "AUTH f0 00 is reason 0x00",
			raw:  []byte{0xf0, 0x00},
			check: func(cp *packets.ControlPacket) (any, any) {
				return cp.Content.(*packets.Auth).ReasonCode, byte(0x00)
			},
		},
		{
			name: "CONNACK without property length",
			raw:  []byte{0x20, 0x02, 0x01, 0x87},
			check: func(cp *packets.ControlPacket) (any, any) {
				c := cp.Content.(*packets.Connack)
				return [2]any{c.SessionPresent, c.ReasonCode}, [2]any{true, byte(0x87)}
			},
		},
		{
			name: "PUBACK remaining length 2 is success",
			raw:  []byte{0x40, 0x02, 0x12, 0x34},
			check: func(cp *packets.ControlPacket) (any, any) {
				p := cp.Content.(*packets.Puback)
				return [2]any{p.PacketID, p.ReasonCode}, [2]any{uint16(0x1234), byte(0)}
			},
		},
		{
			name: "PUBREC remaining length 3 is a reason without properties",
			raw:  []byte{0x50, 0x03, 0x00, 0x05, 0x87},
			check: func(cp *packets.ControlPacket) (any, any) {
				p := cp.Content.(*packets.Pubrec)
				return [2]any{p.PacketID, p.ReasonCode}, [2]any{uint16(5), byte(0x87)}
			},
		},
		{
			name: "SUBACK reasons are copied, not aliased (STYLE §1.10)",
			raw:  []byte{0x90, 0x05, 0x00, 0x0a, 0x00, 0x01, 0x87},
			check: func(cp *packets.ControlPacket) (any, any) {
				return string(cp.Content.(*packets.Suback).Reasons), "\x01\x87"
			},
		},
		{
			name: "PUBLISH flags decode into the struct",
			raw:  []byte{0x3d, 0x07, 0x00, 0x01, 'a', 0x00, 0x02, 0x00, 'p'},
			check: func(cp *packets.ControlPacket) (any, any) {
				p := cp.Content.(*packets.Publish)
				return [5]any{p.QoS, p.Duplicate, p.Retain, p.PacketID, string(p.Payload)},
					[5]any{byte(2), true, true, uint16(2), "p"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := bytes.Clone(tt.raw)
			f, err := ParseFrame(raw)
			if err != nil {
				t.Fatal(err)
			}
			cp, err := Decode(f)
			if err != nil {
				t.Fatalf("Decode: got %v, want no error", err)
			}
			for i := range raw {
				raw[i] = 0xee // the decoded value must not alias the frame
			}
			if got, want := tt.check(cp); got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestDecodeRefusesConnect(t *testing.T) {
	f, err := ParseFrame(vectors[indexOf(t, "CONNECT minimal")].raw)
	if err != nil {
		t.Fatal(err)
	}
	var pe *Error
	if _, err := Decode(f); !errors.As(err, &pe) || pe.Code != 0x82 {
		t.Fatalf("Decode(CONNECT): got %v, want *Error 0x82 pointing to DecodeConnect", err)
	}
}

func indexOf(t testing.TB, name string) int {
	t.Helper()
	for i, v := range vectors {
		if v.name == name {
			return i
		}
	}
	t.Fatalf("no vector %q", name)
	return -1
}

// TestDirection checks the packets each side may not send. // SPEC 4
func TestDirection(t *testing.T) {
	serverOnly := map[byte]bool{packets.CONNACK: true, packets.SUBACK: true, packets.UNSUBACK: true, packets.PINGRESP: true}
	clientOnly := map[byte]bool{packets.CONNECT: true, packets.SUBSCRIBE: true, packets.UNSUBSCRIBE: true, packets.PINGREQ: true}
	for typ := byte(1); typ <= 15; typ++ {
		t.Run(TypeName(typ), func(t *testing.T) {
			check := func(side string, err error, refused bool) {
				var pe *Error
				switch {
				case refused && (!errors.As(err, &pe) || pe.Code != 0x82):
					t.Errorf("%s: got %v, want *Error 0x82", side, err)
				case !refused && err != nil:
					t.Errorf("%s: got %v, want nil", side, err)
				}
			}
			check("CheckFromClient", CheckFromClient(typ), serverOnly[typ])
			check("CheckFromServer", CheckFromServer(typ), clientOnly[typ])
		})
	}
	for _, typ := range []byte{0, 16} {
		if CheckFromClient(typ) == nil || CheckFromServer(typ) == nil {
			t.Errorf("type %d: got nil, want an error", typ)
		}
	}
}

func TestTypeName(t *testing.T) {
	tests := []struct {
		name string
		t    byte
		want string
	}{
		{"connect", packets.CONNECT, "connect"},
		{"publish", packets.PUBLISH, "publish"},
		{"auth", packets.AUTH, "auth"},
		{"reserved 0", 0, "other"},
		{"out of range", 200, "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TypeName(tt.t); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestPacketID covers the packet types with an identifier and the refusals.
func TestPacketID(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		want uint16
		code byte
	}{
		{"PUBACK", []byte{0x40, 0x02, 0x01, 0x02}, 0x0102, 0},
		{"PUBREL", []byte{0x62, 0x03, 0x00, 0x09, 0x92}, 9, 0},
		{"PUBCOMP with reason string", []byte{0x70, 0x08, 0x00, 0x01, 0x00, 0x04, 0x1f, 0x00, 0x01, 'x'}, 1, 0},
		{"SUBACK", []byte{0x90, 0x04, 0x00, 0x0a, 0x00, 0x00}, 10, 0},
		{"UNSUBSCRIBE", []byte{0xa2, 0x06, 0x00, 0x0b, 0x00, 0x00, 0x01, 'a'}, 11, 0},
		{"PUBLISH QoS 1", []byte{0x32, 0x06, 0x00, 0x01, 'a', 0x00, 0x03, 0x00}, 3, 0},
		{"PUBLISH QoS 0 has none", []byte{0x30, 0x04, 0x00, 0x01, 'a', 0x00}, 0, 0x82},
		{"PUBACK id 0 [MQTT-2.2.1-3]", []byte{0x40, 0x02, 0x00, 0x00}, 0, 0x82},
		{"PUBACK truncated", []byte{0x40, 0x01, 0x01}, 0, 0x81},
		{"PUBACK bad properties", []byte{0x40, 0x05, 0x00, 0x01, 0x00, 0x01, 0x23}, 0, 0x81},
		{"SUBACK truncated", []byte{0x90, 0x01, 0x01}, 0, 0x81},
		{"PINGREQ has none", []byte{0xc0, 0x00}, 0, 0x82},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFrame(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := PacketID(f)
			if tt.code != 0 {
				var pe *Error
				if !errors.As(err, &pe) || pe.Code != tt.code {
					t.Fatalf("got %v, want *Error 0x%02x", err, tt.code)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v, want %d", got, err, tt.want)
			}
		})
	}
}

func TestParseFrame(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		code byte
	}{
		{"PINGREQ", []byte{0xc0, 0x00}, 0},
		{"empty", nil, 0x81},
		{"one byte", []byte{0xc0}, 0x81},
		{"bytes after the packet", []byte{0xc0, 0x00, 0xc0}, 0x81},
		{"truncated", []byte{0x30, 0x05, 0x00}, 0x81},
		{"5-byte VBI [MQTT-1.5.5-1]", []byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, 0x81},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFrame(tt.raw)
			var pe *Error
			switch {
			case tt.code == 0 && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tt.code != 0 && (!errors.As(err, &pe) || pe.Code != tt.code):
				t.Fatalf("got %v, want *Error 0x%02x", err, tt.code)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	err := error(&Error{Code: 0x95, Reason: "packet of 9 bytes exceeds the maximum packet size 8"})
	if got, want := err.Error(), "packet too large (0x95): packet of 9 bytes exceeds the maximum packet size 8"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Checking the properties of a valid packet allocates nothing: it runs for
// every packet the proxy encodes (issue 5). An invalid one still reports
// every field over its limit.
func TestCheckPropertiesLen(t *testing.T) {
	ok := &packets.Properties{ReasonString: "fine", AuthMethod: "OAUTH2-JWT", User: []packets.User{{Key: "k", Value: "v"}}}
	if n := testing.AllocsPerRun(100, func() { _ = checkPropertiesLen(ok) }); n != 0 {
		t.Errorf("%v allocations checking valid properties, want 0", n)
	}
	long := strings.Repeat("x", 70000)
	err := checkPropertiesLen(&packets.Properties{ReasonString: long, User: []packets.User{{Key: "k", Value: long}}})
	if err == nil || !strings.Contains(err.Error(), "reason string") || !strings.Contains(err.Error(), "user property value") {
		t.Errorf("err = %v, want both fields over the limit named", err)
	}
}
