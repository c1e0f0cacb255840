package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// switchPolicy allows every filter until revoke is set, then denies
// subscriptions to that filter.
type switchPolicy struct{ revoked atomic.Pointer[string] }

func (p *switchPolicy) Grants(*authz.Identity, string) Grants { return switchGrants{p.revoked.Load()} }

type switchGrants struct{ revoked *string }

func (switchGrants) Publish(string) authz.Decision { return authz.Decision{Allowed: true} }
func (switchGrants) Receive(string) authz.Decision { return authz.Decision{Allowed: true} }
func (g switchGrants) Subscribe(f string) authz.Decision {
	return authz.Decision{Allowed: g.revoked == nil || *g.revoked != f}
}

// SPEC 3.6 re-checks the subscriptions a connection holds. A filter the
// broker refused in its SUBACK (an EMQX or Mosquitto ACL, a quota) is not
// held, so revoking it must not end the connection; revoking a filter the
// broker granted must (DISCONNECT 0x87).
func TestRecheckIgnoresFiltersTheBrokerRefused(t *testing.T) {
	tests := []struct {
		name    string
		revoke  string
		wantEnd bool
	}{
		{"revoked filter was refused by the broker", "b/#", false},
		{"revoked filter was granted by the broker", "a/#", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pol := &switchPolicy{}
				srv, client, cr, broker, br := pipeSession(t, pol)
				go func() { _, _ = client.Write(subscribeBytes(t, 7, "a/#", "b/#")) }()
				if f, err := br.ReadFrame(); err != nil || f.Type != packets.SUBSCRIBE {
					t.Fatalf("broker: want SUBSCRIBE, got %v % x", err, f.Raw)
				}
				// SUBACK id 7: a/# granted QoS 1, b/# refused 0x87.
				go func() { _, _ = broker.Write([]byte{0x90, 0x05, 0x00, 0x07, 0x00, 0x01, 0x87}) }()
				if f, err := cr.ReadFrame(); err != nil || f.Type != packets.SUBACK || !bytes.Equal(f.Body[3:], []byte{0x01, 0x87}) {
					t.Fatalf("client: want the broker's SUBACK, got %v % x", err, f.Raw)
				}
				go func() { _, _ = io.Copy(io.Discard, broker) }() // the broker keeps reading to the end
				if ended := revokeAndRecheck(srv, pol, cr, tt.revoke); ended != tt.wantEnd {
					t.Fatalf("revoking %s: connection ended %v, want %v", tt.revoke, ended, tt.wantEnd)
				}
				client.Close()
				_ = srv.Shutdown(context.Background())
			})
		})
	}
}

// pipeSession serves one authenticated client connection over pipes under
// pol and returns the server, the client's end and the broker's end, with
// the CONNECT and CONNACK already through. Run it inside a synctest bubble.
func pipeSession(t *testing.T, pol Policy) (srv *Server, client net.Conn, cr *packetcodec.Reader, broker net.Conn, br *packetcodec.Reader) {
	t.Helper()
	srv, client, d := pipeProxy(t, fakeAuth{}, Options{Policy: pol})
	broker = <-d.brokers
	t.Cleanup(func() { broker.Close() })
	br = packetcodec.NewReader(broker, 1<<20)
	if f, err := br.ReadFrame(); err != nil || f.Type != packets.CONNECT {
		t.Fatalf("broker: first packet %v, err %v", f.Type, err)
	}
	go func() { _, _ = broker.Write([]byte{0x20, 0x03, 0x00, 0x00, 0x00}) }()
	cr = packetcodec.NewReader(client, 1<<20)
	if f, err := cr.ReadFrame(); err != nil || f.Type != packets.CONNACK {
		t.Fatalf("CONNACK: %v % x", err, f.Raw)
	}
	return srv, client, cr, broker, br
}

// subscribeBytes encodes a SUBSCRIBE of filters (QoS 1) with packet id id.
func subscribeBytes(t *testing.T, id uint16, filters ...string) []byte {
	t.Helper()
	s := &packets.Subscribe{PacketID: id, Properties: &packets.Properties{}}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, packets.SubOptions{Topic: f, QoS: 1})
	}
	var b bytes.Buffer
	if _, err := s.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// revokeAndRecheck revokes filter, re-checks srv's connections and reports
// whether the client, reading as a real one does (a proxy writing
// DISCONNECT to it must not stall the bubble), was sent DISCONNECT 0x87.
func revokeAndRecheck(srv *Server, pol *switchPolicy, cr *packetcodec.Reader, filter string) bool {
	ended := make(chan packetcodec.Frame, 1)
	go func() {
		if f, err := cr.ReadFrame(); err == nil {
			ended <- f
		}
		close(ended)
	}()
	pol.revoked.Store(&filter)
	srv.Recheck()
	synctest.Wait()
	select {
	case f, ok := <-ended:
		return ok && f.Type == packets.DISCONNECT && f.Body[0] == packets.DisconnectNotAuthorized
	default:
		return false
	}
}

// SPEC 3.6: which of several SUBSCRIBEs of one filter awaiting the broker's
// SUBACK decides whether it is held. Any grant does, so it stays
// re-checked: a refusal of an older SUBSCRIBE (since unsubscribed, or asked
// again) must not stop a filter the broker granted later from being
// re-checked, nor a later refusal one it granted before. A client reusing
// the packet id of a pending SUBSCRIBE is told it broke the protocol
// [MQTT-2.2.1-3].
func TestPendingSubscribesOfOneFilter(t *testing.T) {
	unsubscribe := []byte{0xa2, 0x08, 0x00, 0x02, 0x00, 0x00, 0x03, 'a', '/', '#'} // id 2, a/#
	tests := []struct {
		name    string
		client  [][]byte // written in one go, before the broker answers
		broker  [][]byte // the broker's answers, once it has read len(client) packets
		wantEnd bool     // revoking a/# ends the connection
	}{
		{"refused, unsubscribed, granted again",
			[][]byte{subscribeBytes(t, 1, "a/#"), unsubscribe, subscribeBytes(t, 3, "a/#")},
			[][]byte{{0x90, 0x04, 0x00, 0x01, 0x00, 0x87}, {0xb0, 0x04, 0x00, 0x02, 0x00, 0x00}, {0x90, 0x04, 0x00, 0x03, 0x00, 0x01}},
			true},
		{"refused, then granted while the first pended",
			[][]byte{subscribeBytes(t, 1, "a/#"), subscribeBytes(t, 3, "a/#")},
			[][]byte{{0x90, 0x04, 0x00, 0x01, 0x00, 0x87}, {0x90, 0x04, 0x00, 0x03, 0x00, 0x01}},
			true},
		{"granted, then refused while the first pended",
			[][]byte{subscribeBytes(t, 1, "a/#"), subscribeBytes(t, 3, "a/#")},
			[][]byte{{0x90, 0x04, 0x00, 0x01, 0x00, 0x01}, {0x90, 0x04, 0x00, 0x03, 0x00, 0x87}},
			true}, // as once settled: the broker may keep what it granted
		{"granted, then refused once settled",
			[][]byte{subscribeBytes(t, 1, "a/#")},
			[][]byte{{0x90, 0x04, 0x00, 0x01, 0x00, 0x01}, nil, {0x90, 0x04, 0x00, 0x03, 0x00, 0x87}},
			true}, // the broker may keep the subscription it had
		{"refused, unsubscribed",
			[][]byte{subscribeBytes(t, 1, "a/#"), unsubscribe},
			[][]byte{{0x90, 0x04, 0x00, 0x01, 0x00, 0x87}, {0xb0, 0x04, 0x00, 0x02, 0x00, 0x00}},
			false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				pol := &switchPolicy{}
				srv, client, cr, broker, br := pipeSession(t, pol)
				go func() { _, _ = client.Write(bytes.Join(tt.client, nil)) }()
				for range tt.client {
					if _, err := br.ReadFrame(); err != nil {
						t.Fatalf("broker: %v", err)
					}
				}
				for _, answer := range tt.broker {
					if answer == nil { // the client asks again once the first answer is in
						go func() { _, _ = client.Write(subscribeBytes(t, 3, "a/#")) }()
						if _, err := br.ReadFrame(); err != nil {
							t.Fatalf("broker: %v", err)
						}
						continue
					}
					go func() { _, _ = broker.Write(answer) }()
					if f, err := cr.ReadFrame(); err != nil || f.Type != answer[0]>>4 {
						t.Fatalf("client: want packet type %d, got %v % x", answer[0]>>4, err, f.Raw)
					}
				}
				go func() { _, _ = io.Copy(io.Discard, broker) }()
				if ended := revokeAndRecheck(srv, pol, cr, "a/#"); ended != tt.wantEnd {
					t.Fatalf("revoking a/#: connection ended %v, want %v", ended, tt.wantEnd)
				}
				client.Close()
				_ = srv.Shutdown(context.Background())
			})
		})
	}
	t.Run("reused packet id", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv, client, cr, broker, br := pipeSession(t, &switchPolicy{})
			go func() { _, _ = client.Write(append(subscribeBytes(t, 1, "a/#"), subscribeBytes(t, 1, "b/#")...)) }()
			go func() { // the first SUBSCRIBE, forwarded
				if f, err := br.ReadFrame(); err != nil || f.Type != packets.SUBSCRIBE {
					t.Errorf("broker: want the first SUBSCRIBE, got %v % x", err, f.Raw)
				}
				_, _ = io.Copy(io.Discard, broker)
			}()
			f, err := cr.ReadFrame()
			if err != nil || f.Type != packets.DISCONNECT || f.Body[0] != packets.DisconnectProtocolError {
				t.Fatalf("want DISCONNECT 0x82, got %v % x", err, f.Raw)
			}
			client.Close()
			_ = srv.Shutdown(context.Background())
		})
	})
}
