package packetcodec

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/eclipse/paho.golang/packets"
)

// TestPahoRoundTrip encodes one packet of each type with paho's own
// encoder, reads it back through Reader and Decode, and expects the same
// value: the codec accepts everything paho's client sends and decodes it
// faithfully.
func TestPahoRoundTrip(t *testing.T) {
	u16 := func(v uint16) *uint16 { return &v }
	u32 := func(v uint32) *uint32 { return &v }
	b := func(v byte) *byte { return &v }
	id := func(v int) *int { return &v }
	tests := []struct {
		name string
		p    packets.Packet
	}{
		{"connack", &packets.Connack{SessionPresent: true, ReasonCode: 0, Properties: &packets.Properties{
			MaximumQOS: b(1), AssignedClientID: "gen-1", TopicAliasMaximum: u16(10), MaximumPacketSize: u32(1 << 19),
			AuthMethod: "OAUTH2-JWT", ReasonString: "ok", User: []packets.User{{Key: "a", Value: "b"}},
		}}},
		{"publish qos 0", &packets.Publish{Topic: "a/b", Payload: []byte("hello"), Properties: &packets.Properties{}}},
		{"publish qos 2 retain dup", &packets.Publish{Topic: "a/b", QoS: 2, Retain: true, Duplicate: true, PacketID: 77, Payload: []byte{}, Properties: &packets.Properties{
			PayloadFormat: b(1), MessageExpiry: u32(9), ContentType: "json", ResponseTopic: "r/1", CorrelationData: []byte{1, 2},
			TopicAlias: u16(3), SubscriptionIdentifier: id(268_435_455), User: []packets.User{{Key: "k", Value: "v"}, {Key: "k", Value: "w"}},
		}}},
		{"puback", &packets.Puback{PacketID: 1, ReasonCode: packets.PubackNotAuthorized, Properties: &packets.Properties{ReasonString: "no"}}},
		{"puback success", &packets.Puback{PacketID: 2, Properties: &packets.Properties{}}},
		{"pubrec", &packets.Pubrec{PacketID: 3, ReasonCode: packets.PubrecSuccess, Properties: &packets.Properties{}}},
		{"pubrel", &packets.Pubrel{PacketID: 4, Properties: &packets.Properties{}}},
		{"pubcomp", &packets.Pubcomp{PacketID: 5, Properties: &packets.Properties{User: []packets.User{{Key: "x", Value: "y"}}}}},
		{"subscribe", &packets.Subscribe{PacketID: 6, Properties: &packets.Properties{SubscriptionIdentifier: id(9)}, Subscriptions: []packets.SubOptions{
			{Topic: "a/+", QoS: 1}, {Topic: "#", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
		}}},
		{"suback", &packets.Suback{PacketID: 6, Reasons: []byte{1, 0x87}, Properties: &packets.Properties{}}},
		{"unsubscribe", &packets.Unsubscribe{PacketID: 7, Topics: []string{"a/+", "b"}, Properties: &packets.Properties{}}},
		{"unsuback", &packets.Unsuback{PacketID: 7, Reasons: []byte{0, 0x11}, Properties: &packets.Properties{}}},
		{"pingreq", &packets.Pingreq{}},
		{"pingresp", &packets.Pingresp{}},
		{"disconnect", &packets.Disconnect{ReasonCode: packets.DisconnectDisconnectWithWillMessage, Properties: &packets.Properties{
			SessionExpiryInterval: u32(0), ReasonString: "bye", ServerReference: "other",
		}}},
		{"auth", &packets.Auth{ReasonCode: packets.AuthReauthenticate, Properties: &packets.Properties{AuthMethod: "OAUTH2-JWT", AuthData: []byte("h.p.s")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var wire bytes.Buffer
			if _, err := tt.p.WriteTo(&wire); err != nil {
				t.Fatal(err)
			}
			f, err := NewReader(&wire, 0).ReadFrame()
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			cp, err := Decode(f)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(cp.Content, tt.p) {
				t.Fatalf("got  %#v\nwant %#v", cp.Content, tt.p)
			}
			// And our encoder gives the same bytes as paho's.
			ours, err := AppendPacket(nil, tt.p)
			if err != nil {
				t.Fatalf("AppendPacket: %v", err)
			}
			if !bytes.Equal(ours, f.Raw) {
				t.Fatalf("AppendPacket: got % x, want % x", ours, f.Raw)
			}
		})
	}
}

// TestPahoConnectRoundTrip covers CONNECT, whose Will properties paho's
// encoder can only carry when they are also CONNECT properties (Will Delay,
// User): those survive paho, and DecodeConnect reads them.
func TestPahoConnectRoundTrip(t *testing.T) {
	u32 := func(v uint32) *uint32 { return &v }
	b := func(v byte) *byte { return &v }
	want := &packets.Connect{
		ProtocolName: "MQTT", ProtocolVersion: 5, KeepAlive: 60, CleanStart: true, ClientID: "dev-1",
		UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("p"),
		WillFlag: true, WillQOS: 2, WillTopic: "dev/1/status", WillMessage: []byte("offline"),
		Properties: &packets.Properties{
			SessionExpiryInterval: u32(60), RequestProblemInfo: b(1), AuthMethod: "OAUTH2-JWT", AuthData: []byte("h.p.s"),
		},
		WillProperties: &packets.Properties{WillDelayInterval: u32(10), User: []packets.User{{Key: "k", Value: "v"}}},
	}
	var wire bytes.Buffer
	if _, err := want.WriteTo(&wire); err != nil {
		t.Fatal(err)
	}
	f, err := NewReader(&wire, 0).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeConnect(f)
	if err != nil {
		t.Fatalf("DecodeConnect: %v", err)
	}
	if !reflect.DeepEqual(c.Connect, want) {
		t.Fatalf("got  %+v\nwant %+v", c.Connect, want)
	}
	enc, err := EncodeConnect(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, f.Raw) {
		t.Fatalf("EncodeConnect: got % x, want paho's % x", enc, f.Raw)
	}
}
