package packetcodec

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/packets"
)

func fullConnect(t *testing.T) (Frame, *Connect) {
	t.Helper()
	raw := bytes.Clone(vectors[indexOf(t, "CONNECT with Will properties, auth, user name and password")].raw)
	f := mustFrame(t, raw)
	c, err := DecodeConnect(f)
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// TestDecodeConnectFields checks the decoded values and that nothing
// aliases the frame buffer, which the next read reuses.
func TestDecodeConnectFields(t *testing.T) {
	f, c := fullConnect(t)
	for i := range f.Raw {
		f.Raw[i] = 0xee
	}
	u16 := func(v uint16) *uint16 { return &v }
	u32 := func(v uint32) *uint32 { return &v }
	b := func(v byte) *byte { return &v }
	want := &packets.Connect{
		ProtocolName: "MQTT", ProtocolVersion: 5, KeepAlive: 30,
		CleanStart: true, WillFlag: true, WillQOS: 1, WillRetain: true, UsernameFlag: true, PasswordFlag: true,
		ClientID: "c1", Username: "user", Password: []byte("pass"),
		WillTopic: "will", WillMessage: []byte("bye"),
		Properties: &packets.Properties{
			ReceiveMaximum:        u16(10),
			SessionExpiryInterval: u32(3600),
			AuthMethod:            "OAUTH2-JWT",
			AuthData:              []byte("a.b.c"),
			User:                  []packets.User{{Key: "k", Value: "v"}},
		},
		WillProperties: &packets.Properties{
			PayloadFormat:     b(1),
			MessageExpiry:     u32(60),
			ContentType:       "text/plain",
			ResponseTopic:     "reply",
			CorrelationData:   []byte{0xca, 0xfe},
			WillDelayInterval: u32(5),
			User:              []packets.User{{Key: "a", Value: "b"}},
		},
	}
	if !reflect.DeepEqual(c.Connect, want) {
		t.Fatalf("got %+v\nwant %+v", *c.Connect, *want)
	}
	if got := len(c.WillPropertiesRaw); got != 45 {
		t.Fatalf("WillPropertiesRaw: got %d bytes, want 45", got)
	}
	if c.WillPropertiesRaw[0] != packets.PropPayloadFormat {
		t.Fatalf("WillPropertiesRaw aliases the frame: % x", c.WillPropertiesRaw[:4])
	}
}

// TestEncodeConnectProxyEdit does what the proxy does before dialling the
// broker (SPEC 2, 4) and checks the Will properties survive byte for byte
// (STYLE §1.4), which paho's encoder would drop.
func TestEncodeConnectProxyEdit(t *testing.T) {
	_, c := fullConnect(t)
	up := *c.Connect
	props := *c.Properties
	props.AuthMethod, props.AuthData = "", nil
	zero := uint16(0)
	props.TopicAliasMaximum = &zero
	up.Properties = &props
	up.ClientID = "tenant/c1"
	up.Username, up.Password = "proxy", []byte("secret")
	out, err := EncodeConnect(nil, &Connect{Connect: &up, WillPropertiesRaw: c.WillPropertiesRaw})
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeConnect(mustFrame(t, out))
	if err != nil {
		t.Fatalf("DecodeConnect(EncodeConnect(…)): %v", err)
	}
	if !bytes.Equal(back.WillPropertiesRaw, c.WillPropertiesRaw) {
		t.Fatalf("Will properties: got % x, want % x", back.WillPropertiesRaw, c.WillPropertiesRaw)
	}
	if !reflect.DeepEqual(back.WillProperties, c.WillProperties) {
		t.Fatalf("Will properties: got %+v, want %+v", back.WillProperties, c.WillProperties)
	}
	p := back.Properties
	if p.AuthMethod != "" || p.AuthData != nil || p.TopicAliasMaximum == nil || *p.TopicAliasMaximum != 0 {
		t.Fatalf("properties: got method %q data %v alias max %v, want cleared and 0", p.AuthMethod, p.AuthData, p.TopicAliasMaximum)
	}
	if back.ClientID != "tenant/c1" || back.Username != "proxy" || string(back.Password) != "secret" {
		t.Fatalf("got client id %q user %q, want the edited values", back.ClientID, back.Username)
	}
	// paho's own encoder loses them: the reason this encoder exists.
	var viaPaho bytes.Buffer
	if _, err := up.WriteTo(&viaPaho); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(viaPaho.Bytes(), []byte("text/plain")) {
		t.Fatal("paho now keeps Will properties; STYLE §1.4 can be revisited")
	}
}

// TestEncodeConnectWillProperties: without WillPropertiesRaw, the decoded
// WillProperties are encoded with the Will property set.
func TestEncodeConnectWillProperties(t *testing.T) {
	raw := vectors[indexOf(t, "CONNECT with Will properties, auth, user name and password")].raw
	_, c := fullConnect(t)
	c.WillPropertiesRaw = nil
	got, err := EncodeConnect(nil, c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw) {
		t.Fatalf("got  % x\nwant % x", got, raw)
	}
}

// TestEncodeConnectErrors: refuse, never truncate (STYLE §1.7).
func TestEncodeConnectErrors(t *testing.T) {
	long := strings.Repeat("x", 70_000)
	tests := []struct {
		name    string
		edit    func(*Connect)
		tooLong bool
	}{
		{"client id of 70,000 bytes", func(c *Connect) { c.ClientID = long }, true},
		{"user name of 70,000 bytes", func(c *Connect) { c.Username = long }, true},
		{"password of 70,000 bytes", func(c *Connect) { c.Password = []byte(long) }, true},
		{"will topic of 70,000 bytes", func(c *Connect) { c.WillTopic = long }, true},
		{"will payload of 70,000 bytes", func(c *Connect) { c.WillMessage = []byte(long) }, true},
		{"authentication data of 70,000 bytes", func(c *Connect) { c.Properties.AuthData = []byte(long) }, true},
		{"user property of 70,000 bytes", func(c *Connect) { c.Properties.User = []packets.User{{Key: "k", Value: long}} }, true},
		{"will content type of 70,000 bytes", func(c *Connect) { c.WillPropertiesRaw = nil; c.WillProperties.ContentType = long }, true},
		{"will QoS 3", func(c *Connect) { c.WillQOS = 3 }, false},
		{"protocol version 4", func(c *Connect) { c.ProtocolVersion = 4 }, false},
		{"invalid raw will properties", func(c *Connect) { c.WillPropertiesRaw = []byte{0x11, 0, 0, 0, 1} }, false},
		{"authentication data without method", func(c *Connect) { c.Properties.AuthMethod = "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := fullConnect(t)
			tt.edit(c)
			dst := []byte("prefix")
			got, err := EncodeConnect(dst, c)
			if err == nil {
				t.Fatalf("got % x…, want an error", got[:min(len(got), 16)])
			}
			if tt.tooLong != errors.Is(err, ErrFieldTooLong) {
				t.Fatalf("got %v, want errors.Is(ErrFieldTooLong) = %v", err, tt.tooLong)
			}
			if string(got) != "prefix" {
				t.Fatalf("dst modified on error: %q", got)
			}
		})
	}
}

func TestEncodeConnectDefaults(t *testing.T) {
	got, err := EncodeConnect(nil, &Connect{Connect: &packets.Connect{ClientID: "c", CleanStart: true}})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x10, 0x0e, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 'c'}
	if !bytes.Equal(got, want) {
		t.Fatalf("got  % x\nwant % x", got, want)
	}
	if _, err := EncodeConnect(nil, nil); err == nil {
		t.Fatal("EncodeConnect(nil): got nil error")
	}
}
