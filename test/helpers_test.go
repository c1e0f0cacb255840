package test

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/test/harness"
)

// expectConnack reads a CONNACK and checks its reason code.
func expectConnack(t *testing.T, raw *harness.RawConn, code byte) *packets.Connack {
	t.Helper()
	cp, err := raw.ReadPacket(5 * time.Second)
	if err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	ack, ok := cp.Content.(*packets.Connack)
	if !ok {
		t.Fatalf("got packet type %d, want CONNACK", cp.FixedHeader.Type)
	}
	if ack.ReasonCode != code {
		reason := ""
		if ack.Properties != nil {
			reason = ack.Properties.ReasonString
		}
		t.Fatalf("CONNACK 0x%02x (%q), want 0x%02x", ack.ReasonCode, reason, code)
	}
	if ack.Properties == nil {
		ack.Properties = &packets.Properties{}
	}
	return ack
}

// expectDisconnect reads until a DISCONNECT and checks its reason code.
func expectDisconnect(t *testing.T, raw *harness.RawConn, code byte) *packets.Disconnect {
	t.Helper()
	for {
		cp, err := raw.ReadPacket(5 * time.Second)
		if err != nil {
			t.Fatalf("waiting for DISCONNECT 0x%02x: %v", code, err)
		}
		d, ok := cp.Content.(*packets.Disconnect)
		if !ok {
			continue
		}
		if d.ReasonCode != code {
			t.Fatalf("DISCONNECT 0x%02x, want 0x%02x", d.ReasonCode, code)
		}
		if d.Properties == nil {
			d.Properties = &packets.Properties{}
		}
		return d
	}
}
