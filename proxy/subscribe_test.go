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
				d := &pipeDialer{brokers: make(chan net.Conn, 1)}
				srv, err := New(DefaultConfig(), Options{Authenticator: fakeAuth{}, Dialer: d, Policy: pol})
				if err != nil {
					t.Fatal(err)
				}
				client, server := net.Pipe()
				defer client.Close()
				srv.ServeConn(context.Background(), server)
				go func() { _, _ = client.Write(connectBytes("OAUTH2-JWT", "alice:10m")) }()
				broker := <-d.brokers
				defer broker.Close()
				br := packetcodec.NewReader(broker, 1<<20)
				if f, err := br.ReadFrame(); err != nil || f.Type != packets.CONNECT {
					t.Fatalf("broker: first packet %v, err %v", f.Type, err)
				}
				go func() { _, _ = broker.Write([]byte{0x20, 0x03, 0x00, 0x00, 0x00}) }()
				cr := packetcodec.NewReader(client, 1<<20)
				if f, err := cr.ReadFrame(); err != nil || f.Type != packets.CONNACK {
					t.Fatalf("CONNACK: %v % x", err, f.Raw)
				}

				var sub bytes.Buffer
				s := &packets.Subscribe{PacketID: 7, Properties: &packets.Properties{},
					Subscriptions: []packets.SubOptions{{Topic: "a/#", QoS: 1}, {Topic: "b/#", QoS: 1}}}
				if _, err := s.WriteTo(&sub); err != nil {
					t.Fatal(err)
				}
				go func() { _, _ = client.Write(sub.Bytes()) }()
				if f, err := br.ReadFrame(); err != nil || f.Type != packets.SUBSCRIBE {
					t.Fatalf("broker: want SUBSCRIBE, got %v % x", err, f.Raw)
				}
				// SUBACK id 7: a/# granted QoS 1, b/# refused 0x87.
				go func() { _, _ = broker.Write([]byte{0x90, 0x05, 0x00, 0x07, 0x00, 0x01, 0x87}) }()
				if f, err := cr.ReadFrame(); err != nil || f.Type != packets.SUBACK || !bytes.Equal(f.Body[3:], []byte{0x01, 0x87}) {
					t.Fatalf("client: want the broker's SUBACK, got %v % x", err, f.Raw)
				}
				go func() { _, _ = io.Copy(io.Discard, broker) }() // the broker keeps reading to the end

				// The client keeps reading, as a real one does: a proxy
				// writing DISCONNECT to it must not stall the bubble.
				ended := make(chan packetcodec.Frame, 1)
				go func() {
					if f, err := cr.ReadFrame(); err == nil {
						ended <- f
					}
					close(ended)
				}()
				pol.revoked.Store(&tt.revoke)
				srv.Recheck()
				synctest.Wait()
				select {
				case f, ok := <-ended:
					if !tt.wantEnd {
						t.Fatalf("connection ended (% x, %v) over a filter the broker had refused", f.Raw, ok)
					}
					if !ok || f.Type != packets.DISCONNECT || f.Body[0] != packets.DisconnectNotAuthorized {
						t.Fatalf("want DISCONNECT 0x87, got % x", f.Raw)
					}
				default:
					if tt.wantEnd {
						t.Fatal("revoking a granted subscription did not end the connection")
					}
				}
				client.Close()
				_ = srv.Shutdown(context.Background())
			})
		})
	}
}
