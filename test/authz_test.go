package test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/policy"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy"
	"github.com/mqtt-authproxy/mqtt-authproxy/test/harness"
)

const (
	testNamespace = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg1/providers/Microsoft.EventGrid/namespaces/ns1"
	groupOps      = "99999999-0000-0000-0000-0000000000f0"
)

// basePolicy mirrors an Event Grid namespace: A publishes its telemetry and
// subscribes to its commands; members of groupOps subscribe to broadcast.
var basePolicy = fmt.Sprintf(`topicSpaces:
  - name: telemetry
    topicTemplates: ["devices/${client.authenticationName}/telemetry/#"]
  - name: commands
    topicTemplates: ["devices/${client.authenticationName}/commands/#"]
  - name: broadcast
    topicTemplates: ["broadcast/#"]
roleAssignments:
  - principalId: %[1]s
    principalType: ServicePrincipal
    roleDefinitionName: EventGrid TopicSpaces Publisher
    scope: %[2]s/topicSpaces/telemetry
  - principalId: %[1]s
    principalType: ServicePrincipal
    roleDefinitionId: /subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.Authorization/roleDefinitions/4b0f2fd7-60b4-4eca-896f-4435034f8bf5
    scope: %[2]s/topicSpaces/commands
  - principalId: %[3]s
    principalType: Group
    roleDefinitionName: EventGrid TopicSpaces Subscriber
    scope: %[2]s/topicSpaces/broadcast
`, principalA, testNamespace, groupOps)

// policyStack is an authStack enforcing a policy file the test can rewrite.
type policyStack struct {
	*authStack
	store      *policy.Store
	policyFile string
}

func newPolicyStack(t *testing.T, policyYAML string, mutate ...stackOption) *policyStack {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(policyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := policy.NewStore(policy.Config{Namespace: testNamespace, Files: []string{file}, MaxTemplatesPerTopicSpace: 10}, nil, nil)
	if err != nil {
		t.Fatalf("load policy: %v", err)
	}
	withPolicy := func(_ *proxy.Config, o *proxy.Options, _ *token.Config) { o.Policy = proxy.StorePolicy(store) }
	// The store's policy first, so that an option may wrap it.
	s := newAuthStack(t, append([]stackOption{withPolicy}, mutate...)...)
	store.OnReload(func(*policy.Snapshot) { s.px.Server.Recheck() })
	return &policyStack{authStack: s, store: store, policyFile: file}
}

// reloadEdited writes policy with the first from replaced by to as the
// policy file and reloads it (which re-checks the live connections).
func (s *policyStack) reloadEdited(t *testing.T, policy, from, to string) {
	t.Helper()
	edited := strings.Replace(policy, from, to, 1)
	if edited == policy {
		t.Fatal("test policy edit did not apply")
	}
	if err := os.WriteFile(s.policyFile, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.store.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

func (s *policyStack) connectAs(t *testing.T, oid, clientID string, extra map[string]any) *harness.Client {
	t.Helper()
	return harness.MustConnect(t, s.px.Addr, harness.ClientOptions{ClientID: clientID, CleanStart: true, KeepAlive: 30,
		AuthMethod: "OAUTH2-JWT", AuthData: []byte(s.mint(t, oid, time.Hour, extra))})
}

// SPEC 3.4: allowed PUBLISH is forwarded at every QoS; denied QoS 0 is
// dropped, QoS 1 gets PUBACK 0x87 and QoS 2 PUBREC 0x87 from the proxy, and
// nothing denied reaches a subscriber listening directly on the broker.
func TestPublishEnforcement(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	direct := harness.MustConnect(t, s.broker.Addr, harness.ClientOptions{ClientID: "direct", CleanStart: true})
	subscribe(t, direct, "devices/#", 2)
	a := s.connectAs(t, principalA, "dev", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	own := "devices/" + principalA + "/telemetry/temp"
	other := "devices/" + principalB + "/telemetry/temp"
	for qos := byte(0); qos <= 2; qos++ {
		if _, err := a.Publish(ctx, &paho.Publish{Topic: own, QoS: qos, Payload: []byte{'a', '0' + qos}}); err != nil {
			t.Errorf("allowed publish QoS %d: %v", qos, err)
		}
		resp, err := a.Publish(ctx, &paho.Publish{Topic: other, QoS: qos, Payload: []byte{'d', '0' + qos}})
		switch qos {
		case 0:
			if err != nil {
				t.Errorf("denied QoS 0 publish: client error %v (the proxy drops it silently)", err)
			}
		default:
			// paho reports PUBACK ≥ 0x80 as an error, PUBREC only in resp.
			if resp == nil || resp.ReasonCode != 0x87 {
				t.Errorf("denied QoS %d publish: resp %+v err %v, want reason 0x87", qos, resp, err)
			} else if want := "publish to '" + other + "' not allowed: no topic space granting publish matches the topic"; resp.Properties == nil || resp.Properties.ReasonString != want {
				t.Errorf("denied QoS %d reason string %+v, want %q", qos, resp.Properties, want)
			}
		}
	}
	got := direct.WaitMessages(3, 5*time.Second)
	// A control message proves nothing denied is still in flight.
	ctl := harness.MustConnect(t, s.broker.Addr, harness.ClientOptions{ClientID: "ctl", CleanStart: true})
	publish(t, ctl, &paho.Publish{Topic: "devices/control", QoS: 1, Payload: []byte("ctl")})
	got = direct.WaitMessages(4, 5*time.Second)
	var topics []string
	for _, m := range got {
		topics = append(topics, m.Topic)
		if m.Topic == other {
			t.Errorf("denied publish reached the broker: %q QoS %d", m.Payload, m.QoS)
		}
	}
	if len(got) != 4 {
		t.Errorf("direct subscriber got %v, want 3 allowed messages and the control", topics)
	}
	// SPEC 3.4: every denial is counted, QoS 0 included.
	wantDenials(t, s.px.Registry, 3, 0, 0)
	if logs := s.px.Logs.String(); strings.Count(logs, `"event":"denial"`) != 3 {
		t.Errorf("audit has %d denial lines, want 3 (one per denied publish)", strings.Count(logs, `"event":"denial"`))
	}
}

// SPEC 3.2, 3.4: each filter is judged alone; the SUBACK keeps the client's
// order with 0x87 for denied filters.
func TestPartialSubscribe(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	a := s.connectAs(t, principalA, "dev", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := a.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "devices/" + principalB + "/commands/#", QoS: 1},
		{Topic: "devices/" + principalA + "/commands/#", QoS: 1},
		{Topic: "broadcast/#", QoS: 0},
		{Topic: "devices/" + principalA + "/commands/+/x", QoS: 2},
		{Topic: "devices/+/commands/#", QoS: 1},
	}})
	if err != nil && ack == nil {
		t.Fatalf("subscribe: %v", err)
	}
	want := []byte{0x87, 0x01, 0x87, 0x02, 0x87}
	if string(ack.Reasons) != string(want) {
		t.Fatalf("SUBACK reasons % x, want % x", ack.Reasons, want)
	}
	// The reason names the denied filters and says what is missing: the
	// principal may subscribe to devices/<itself>/commands/#, but no
	// template covers the whole of devices/+/commands/#.
	wantReason := "subscribe to 'devices/" + principalB + "/commands/#', 'broadcast/#', 'devices/+/commands/#' not allowed: " +
		"no topic space granting subscribe has a template covering the whole filter"
	if ack.Properties == nil || ack.Properties.ReasonString != wantReason {
		t.Errorf("SUBACK reason %v, want %q", ack.Properties, wantReason)
	}
	// The allowed subscriptions work.
	pub := harness.MustConnect(t, s.broker.Addr, harness.ClientOptions{ClientID: "pub", CleanStart: true})
	publish(t, pub, &paho.Publish{Topic: "devices/" + principalA + "/commands/reboot", QoS: 1, Payload: []byte("go")})
	if got := a.WaitMessages(1, 5*time.Second); len(got) != 1 {
		t.Fatalf("allowed subscription got %d messages, want 1", len(got))
	}
}

// SPEC 3.4: a Will whose topic the principal may not publish refuses the
// CONNECT with 0x87 naming the Will topic.
func TestDeniedWill(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	c, err := harness.Connect(t, s.px.Addr, harness.ClientOptions{ClientID: "w", CleanStart: true,
		AuthMethod: "OAUTH2-JWT", AuthData: []byte(s.mint(t, principalA, time.Hour, nil)),
		Will: &paho.WillMessage{Topic: "broadcast/lost", QoS: 1, Payload: []byte("x")}})
	if err == nil || c.Connack == nil || c.Connack.ReasonCode != 0x87 {
		t.Fatalf("err %v CONNACK %+v, want 0x87", err, c.Connack)
	}
	if r := c.Connack.Properties.ReasonString; !strings.Contains(r, "broadcast/lost") {
		t.Errorf("reason string %q does not name the Will topic", r)
	}
	ok, err := harness.Connect(t, s.px.Addr, harness.ClientOptions{ClientID: "w2", CleanStart: true,
		AuthMethod: "OAUTH2-JWT", AuthData: []byte(s.mint(t, principalA, time.Hour, nil)),
		Will: &paho.WillMessage{Topic: "devices/" + principalA + "/telemetry/lost", QoS: 1, Payload: []byte("x")}})
	if err != nil {
		t.Fatalf("allowed Will refused: %v (%+v)", err, ok.Connack)
	}
}

// SPEC 4: an alias re-mapped to a denied topic is judged on the topic it
// now stands for.
func TestTopicAliasRemappedToDeniedTopic(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	direct := harness.MustConnect(t, s.broker.Addr, harness.ClientOptions{ClientID: "direct", CleanStart: true})
	subscribe(t, direct, "#", 1)
	raw := harness.DialRaw(t, s.px.Addr)
	raw.Write(harness.ConnectV5{ClientID: "alias", CleanStart: true, KeepAlive: 30,
		Props: authProps("OAUTH2-JWT", s.mint(t, principalA, time.Hour, nil))}.Bytes())
	ack := expectConnack(t, raw, 0)
	if ack.Properties.TopicAliasMaximum == nil || *ack.Properties.TopicAliasMaximum == 0 {
		t.Fatalf("proxy advertises no topic aliases")
	}
	allowed := "devices/" + principalA + "/telemetry/a"
	denied := "broadcast/x"
	pub := func(topic string, alias uint16, id uint16, payload string) {
		rawAliasPublish(raw, topic, alias, id, payload)
	}
	expectPuback := func(id uint16, code byte) {
		t.Helper()
		cp, err := raw.ReadPacket(5 * time.Second)
		if err != nil {
			t.Fatalf("read PUBACK %d: %v", id, err)
		}
		pa, ok := cp.Content.(*packets.Puback)
		if !ok || pa.PacketID != id || pa.ReasonCode != code {
			t.Fatalf("got %+v, want PUBACK id %d reason 0x%02x", cp.Content, id, code)
		}
	}
	pub(allowed, 1, 1, "via topic")
	expectPuback(1, 0)
	pub("", 1, 2, "via alias")
	expectPuback(2, 0)
	pub(denied, 1, 3, "remap")
	expectPuback(3, 0x87)
	pub("", 1, 4, "alias now denied")
	expectPuback(4, 0x87)
	got := direct.WaitMessages(3, 2*time.Second)
	if len(got) != 2 {
		t.Fatalf("direct subscriber got %d messages, want 2", len(got))
	}
	for _, m := range got {
		if m.Topic != allowed {
			t.Errorf("broker got topic %q, want only %q (full topic, no alias)", m.Topic, allowed)
		}
	}
}

// rawAliasPublish writes a QoS 1 PUBLISH with a Topic Alias.
func rawAliasPublish(raw *harness.RawConn, topic string, alias uint16, id uint16, payload string) {
	body := harness.AppendString(nil, topic)
	body = append(body, byte(id>>8), byte(id))
	props := []byte{packets.PropTopicAlias, byte(alias >> 8), byte(alias)}
	body = append(harness.AppendVBI(body, len(props)), props...)
	raw.Write(harness.Packet(0x32, append(body, payload...)))
}

// SPEC 4: an alias above the advertised maximum ends the connection with
// 0x94, one never defined with 0x82, and aliases holding more than 256 KiB
// of topics with 0x97 (the bound on what a connection's aliases hold).
func TestTopicAliasErrors(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	long := func(i int) string {
		return "devices/" + principalA + "/telemetry/" + fmt.Sprint(i) + strings.Repeat("x", 60_000)
	}
	tests := []struct {
		name     string
		publish  func(t *testing.T, raw *harness.RawConn) // the PUBLISHes before the one that ends it
		last     func(raw *harness.RawConn)
		wantCode byte
	}{
		{"alias above the maximum", nil, func(raw *harness.RawConn) { rawAliasPublish(raw, "devices/x", 11, 1, "p") }, packets.DisconnectTopicAliasInvalid},
		{"alias never defined", nil, func(raw *harness.RawConn) { rawAliasPublish(raw, "", 2, 1, "p") }, packets.DisconnectProtocolError},
		{"aliases over 256 KiB", func(t *testing.T, raw *harness.RawConn) {
			for i := 1; i <= 4; i++ { // 240 KB
				rawAliasPublish(raw, long(i), uint16(i), uint16(i), "p")
				if cp, err := raw.ReadPacket(5 * time.Second); err != nil || cp.Type != packets.PUBACK {
					t.Fatalf("alias %d: got %v (%v), want PUBACK", i, cp, err)
				}
			}
		}, func(raw *harness.RawConn) { rawAliasPublish(raw, long(5), 5, 5, "p") }, packets.DisconnectQuotaExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := harness.DialRaw(t, s.px.Addr)
			raw.Write(harness.ConnectV5{ClientID: "aliases", CleanStart: true, KeepAlive: 30,
				Props: authProps("OAUTH2-JWT", s.mint(t, principalA, time.Hour, nil))}.Bytes())
			if ack := expectConnack(t, raw, 0); ack.Properties.TopicAliasMaximum == nil || *ack.Properties.TopicAliasMaximum != 10 {
				t.Fatalf("Topic Alias Maximum %v, want 10", ack.Properties.TopicAliasMaximum)
			}
			if tt.publish != nil {
				tt.publish(t, raw)
			}
			tt.last(raw)
			expectDisconnect(t, raw, tt.wantCode)
		})
	}
}

// SPEC 3.5 isolation off: a client without a client id gets the broker's,
// and templates naming ${client.clientId} are compiled with it, not with the
// empty id the CONNECT carried.
func TestIsolationOffBrokerAssignedClientID(t *testing.T) {
	policy := strings.Replace(basePolicy, "  - name: broadcast\n", "  - name: own\n    topicTemplates: [\"clients/${client.clientId}/#\"]\n  - name: broadcast\n", 1) +
		"  - principalId: " + principalA + "\n    roleDefinitionName: EventGrid TopicSpaces Publisher\n    scope: " + testNamespace + "/topicSpaces/own\n"
	s := newPolicyStack(t, policy, func(c *proxy.Config, _ *proxy.Options, _ *token.Config) { c.Session.Isolation = proxy.IsolationOff })
	c := harness.MustConnect(t, s.px.Addr, harness.ClientOptions{CleanStart: true, KeepAlive: 30,
		AuthMethod: "OAUTH2-JWT", AuthData: []byte(s.mint(t, principalA, time.Hour, nil))})
	assigned := ""
	if p := c.Connack.Properties; p != nil {
		assigned = p.AssignedClientID
	}
	if assigned == "" {
		t.Fatal("no Assigned Client Identifier from the broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for topic, want := range map[string]bool{"clients/" + assigned + "/x": true, "clients/someone-else/x": false} {
		resp, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte("x")})
		if resp == nil || (resp.ReasonCode < 0x80) != want {
			t.Errorf("publish %s: PUBACK %+v (err %v), want allowed %v", topic, resp, err, want)
		}
	}
}

// SPEC 7 limits.maxConnections: connections beyond it are answered
// CONNACK 0x97 Quota exceeded (SPEC 2 has no row for it; 0x97 is Event
// Grid's QuotaExceeded and MQTT's "administratively imposed limit") and
// counted as server_busy; a place freed is taken again.
func TestMaxConnections(t *testing.T) {
	s := newAuthStack(t, func(c *proxy.Config, _ *proxy.Options, _ *token.Config) { c.Limits.MaxConnections = 2 })
	tok := s.mint(t, principalA, time.Hour, nil)
	opts := func(id string) harness.ClientOptions {
		return harness.ClientOptions{ClientID: id, CleanStart: true, KeepAlive: 30, AuthMethod: "OAUTH2-JWT", AuthData: []byte(tok), NoAutoClose: true}
	}
	first := harness.MustConnect(t, s.px.Addr, opts("one"))
	harness.MustConnect(t, s.px.Addr, opts("two"))
	for i := range 5 {
		// The client is told why: CONNACK 0x97 Quota exceeded, not a
		// closed socket it cannot tell from a network failure.
		c, err := harness.Connect(t, s.px.Addr, opts(fmt.Sprint("over-", i)))
		if err == nil {
			t.Fatalf("connection %d over the limit was accepted (CONNACK %+v)", i, c.Connack)
		}
		if ack := c.Connack; ack == nil || ack.ReasonCode != 0x97 || ack.Properties == nil ||
			!strings.Contains(ack.Properties.ReasonString, "limits.maxConnections") {
			t.Fatalf("connection %d over the limit: CONNACK %+v (err %v), want 0x97 naming limits.maxConnections", i, ack, err)
		}
	}
	if n := s.px.Server.ConnectionCount(); n != 2 {
		t.Errorf("ConnectionCount() = %d after the refusals, want 2", n)
	}
	if n := waitCounter(t, s.px.Registry, "mqtt_authproxy_connects_total", "result", "server_busy", 5); n != 5 {
		t.Errorf(`connects_total{result="server_busy"} = %v, want 5`, n)
	}
	// A storm of refusals is one log line a second, not one per socket
	// (the five took milliseconds; fewer than five lines allows for a
	// stalled machine).
	if n := strings.Count(s.px.Logs.String(), `"msg":"connections refused"`); n < 1 || n >= 5 {
		t.Errorf("%d 'connections refused' lines for 5 refusals, want 1 (one a second)", n)
	}
	if err := first.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if s.px.Server.ConnectionCount() < 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first connection was never counted out")
		}
	}
	harness.MustConnect(t, s.px.Addr, opts("four"))
}

// SPEC 3.6: a persistent session whose subscribe permission is revoked by a
// policy reload gets DISCONNECT 0x87 naming the filter, and no further
// message is delivered, not even from the upstream session it left behind.
func TestPolicyReloadRevokesSubscription(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	tok := s.mint(t, principalA, time.Hour, nil)
	opts := harness.ClientOptions{ClientID: "durable", CleanStart: true, SessionExp: 300, AuthMethod: "OAUTH2-JWT", AuthData: []byte(tok), NoAutoClose: true}
	a := harness.MustConnect(t, s.px.Addr, opts)
	filter := "devices/" + principalA + "/commands/#"
	subscribe(t, a, filter, 1)

	s.reloadEdited(t, basePolicy, "scope: "+testNamespace+"/topicSpaces/commands", "scope: "+testNamespace+"/topicSpaces/telemetry")
	d, closed := a.WaitClosed(5 * time.Second)
	if !closed || d == nil || d.ReasonCode != 0x87 || d.Properties == nil || !strings.Contains(d.Properties.ReasonString, filter) {
		t.Fatalf("after revocation: closed %v DISCONNECT %+v, want 0x87 naming %q", closed, d, filter)
	}
	pub := harness.MustConnect(t, s.broker.Addr, harness.ClientOptions{ClientID: "pub", CleanStart: true})
	publish(t, pub, &paho.Publish{Topic: "devices/" + principalA + "/commands/reboot", QoS: 1, Payload: []byte("queued")})
	opts.CleanStart, opts.NoAutoClose = false, false
	a2 := harness.MustConnect(t, s.px.Addr, opts)
	if !a2.Connack.SessionPresent {
		t.Log("broker did not keep the session; the delivery check below is weaker")
	}
	if got := a2.WaitMessages(1, 2*time.Second); len(got) != 0 {
		t.Fatalf("revoked subscription still delivered %d messages", len(got))
	}
}

// SPEC 3.4, last row: a message the broker delivers from a session that
// outlived the permission (here: a deny assignment added while the client
// was away) is dropped, acknowledged upstream so it is not sent again,
// counted, and audited with what denied it.
func TestReceiveDeniedFromAnOutlivedSession(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	tok := s.mint(t, principalA, time.Hour, map[string]any{"groups": []string{groupOps}})
	opts := harness.ClientOptions{ClientID: "outlived", CleanStart: true, SessionExp: 300, AuthMethod: "OAUTH2-JWT", AuthData: []byte(tok), NoAutoClose: true}
	a := harness.MustConnect(t, s.px.Addr, opts)
	commands := "devices/" + principalA + "/commands/"
	subscribe(t, a, commands+"#", 1)
	subscribe(t, a, "broadcast/#", 1)
	if err := a.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		t.Fatal(err)
	}
	deny := "denyAssignments:\n  - principalId: " + principalA + "\n    roleDefinitionName: EventGrid TopicSpaces Subscriber\n    scope: " + testNamespace + "/topicSpaces/commands\n"
	s.reloadEdited(t, basePolicy, "roleAssignments:", deny+"roleAssignments:")

	pub := harness.MustConnect(t, s.broker.Addr, harness.ClientOptions{ClientID: "pub", CleanStart: true})
	opts.CleanStart = false
	for round, ctl := range []string{"broadcast/first", "broadcast/second"} {
		a := harness.MustConnect(t, s.px.Addr, opts)
		if !a.Connack.SessionPresent {
			t.Fatalf("round %d: the broker kept no session; the test needs one", round)
		}
		if round == 0 {
			publish(t, pub, &paho.Publish{Topic: commands + "reboot", QoS: 1, Payload: []byte("denied")})
		}
		// Mosquitto delivers in order: once the control arrives, the
		// denied message has passed the proxy.
		publish(t, pub, &paho.Publish{Topic: ctl, QoS: 1, Payload: []byte("control")})
		got := a.WaitMessages(1, 5*time.Second)
		if len(got) != 1 || got[0].Topic != ctl {
			var topics []string
			for _, m := range got {
				topics = append(topics, m.Topic)
			}
			t.Fatalf("round %d: received %v, want only %s", round, topics, ctl)
		}
		if err := a.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
			t.Fatal(err)
		}
	}
	// Round 1 got no redelivery of the denied QoS 1 message: the proxy
	// acknowledged it upstream in round 0.
	wantDenials(t, s.px.Registry, 0, 1, 0)
	var denial map[string]any
	for _, m := range harness.AuditLines(s.px.Logs.String()) {
		if m["operation"] == "receive" {
			denial = m
		}
	}
	if denial == nil || denial["decision"] != "deny" || denial["reason"] != "deny_assignment" ||
		denial["topic"] != commands+"reboot" || denial["rule"] != "commands" || denial["principal"] != principalA {
		t.Errorf("receive denial audit line: %v, want decision deny, reason deny_assignment, rule commands, the topic and principal", denial)
	}
}

// SPEC 3.6: a filter the client unsubscribed from is no longer live, so a
// reload revoking it leaves the connection alone.
func TestPolicyReloadAfterUnsubscribe(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	a := s.connectAs(t, principalA, "unsub", nil)
	filter := "devices/" + principalA + "/commands/#"
	subscribe(t, a, filter, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{filter}}); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
	s.reloadEdited(t, basePolicy, "scope: "+testNamespace+"/topicSpaces/commands", "scope: "+testNamespace+"/topicSpaces/telemetry")
	if d, closed := a.WaitClosed(time.Second); closed {
		t.Fatalf("disconnected after the reload (DISCONNECT %+v) although the filter was unsubscribed", d)
	}
	// The connection still works.
	if resp := publish(t, a, &paho.Publish{Topic: "devices/" + principalA + "/telemetry/t", QoS: 1, Payload: []byte("x")}); resp.ReasonCode >= 0x80 {
		t.Errorf("publish after the reload: PUBACK 0x%02x", resp.ReasonCode)
	}
}

// A connection's live subscriptions hold at most 1 MiB of filters: the
// filter that would pass it gets SUBACK 0x97 and never reaches the broker;
// unsubscribing makes room again.
func TestSubscriptionQuota(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	a := s.connectAs(t, principalA, "many-subs", nil)
	filter := func(i int) string {
		return "devices/" + principalA + "/commands/" + fmt.Sprint(i) + "/" + strings.Repeat("f", 60_000)
	}
	sub := func(f string) byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// paho reports a SUBACK refusing every filter as an error too.
		ack, err := a.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: f, QoS: 1}}})
		if ack == nil || len(ack.Reasons) != 1 {
			t.Fatalf("SUBACK %+v (err %v), want one reason", ack, err)
		}
		return ack.Reasons[0]
	}
	fits := 0
	for ; fits < 20; fits++ { // 1 MiB holds 17 filters of 60,000 bytes
		if code := sub(filter(fits)); code != 1 {
			if code != 0x97 {
				t.Fatalf("filter %d: SUBACK 0x%02x, want 0x01 or 0x97", fits, code)
			}
			break
		}
	}
	if fits != 17 {
		t.Fatalf("%d filters of 60,000 bytes fitted, want 17 (1 MiB)", fits)
	}
	if n := harness.CountAudit(s.px.Logs.String(), map[string]string{"operation": "subscribe", "reason": "quota_exceeded", "topic": filter(17)}); n != 1 {
		t.Errorf("%d audit lines for the filter over quota, want 1", n)
	}
	if n := counterValue(t, s.px.Registry, "mqtt_authproxy_subscriptions_over_quota_total", "", ""); n != 1 {
		t.Errorf("mqtt_authproxy_subscriptions_over_quota_total = %v, want 1", n)
	}
	if code := sub(filter(0)); code != 1 {
		t.Errorf("re-subscribing a live filter: SUBACK 0x%02x, want 0x01 (it takes no more room)", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := a.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{filter(0)}}); err != nil {
		t.Fatal(err)
	}
	if code := sub(filter(100)); code != 1 {
		t.Errorf("after an UNSUBSCRIBE: SUBACK 0x%02x, want 0x01", code)
	}
}

// SPEC 3.6: a policy reload decides the next PUBLISH of a live connection,
// also on the topic it has just published to (the proxy remembers each
// connection's last decision, keyed by the grants it was made under).
func TestPolicyReloadRevokesPublish(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	a := s.connectAs(t, principalA, "pub-reload", nil)
	own := "devices/" + principalA + "/telemetry/temp"
	for range 2 {
		// 0x10 (no matching subscribers) is a success too.
		if resp := publish(t, a, &paho.Publish{Topic: own, QoS: 1, Payload: []byte("before")}); resp.ReasonCode >= 0x80 {
			t.Fatalf("before the reload: PUBACK 0x%02x, want success", resp.ReasonCode)
		}
	}
	grant := "roleDefinitionName: EventGrid TopicSpaces Publisher\n    scope: " + testNamespace + "/topicSpaces/telemetry"
	s.reloadEdited(t, basePolicy, grant, strings.Replace(grant, "Publisher", "Subscriber", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := a.Publish(ctx, &paho.Publish{Topic: own, QoS: 1, Payload: []byte("after")})
	if resp == nil || resp.ReasonCode != 0x87 {
		t.Fatalf("after the reload: PUBACK %+v (err %v), want 0x87", resp, err)
	}
}

// heldPolicy holds the first Grants call for clientID, after it has read
// the policy, until release is closed: a handshake held between compiling
// its grants and relaying.
type heldPolicy struct {
	proxy.Policy
	clientID string
	once     sync.Once
	compiled chan struct{}
	release  chan struct{}
}

func (p *heldPolicy) Grants(id *authz.Identity, clientID string) proxy.Grants {
	g := p.Policy.Grants(id, clientID)
	if clientID == p.clientID {
		p.once.Do(func() {
			close(p.compiled)
			<-p.release
		})
	}
	return g
}

// goroutineDialer is a Dialer the proxy cannot dial natively, so the
// handshake runs on a goroutine (the path TLS and WebSocket clients take).
type goroutineDialer struct{ net.Dialer }

// SPEC 3.6: a reload that lands while a client's handshake is between
// compiling its grants and relaying still decides that connection: the
// re-check passes handshakes by, so the connection re-checks itself. On
// both handshake paths: the event loop's and a goroutine's.
func TestPolicyReloadDuringHandshake(t *testing.T) {
	for _, path := range []string{"event loop", "goroutine"} {
		t.Run(path, func(t *testing.T) {
			held := &heldPolicy{clientID: "mid-handshake", compiled: make(chan struct{}), release: make(chan struct{})}
			s := newPolicyStack(t, basePolicy, func(_ *proxy.Config, o *proxy.Options, _ *token.Config) {
				held.Policy = o.Policy
				o.Policy = held
				if path == "goroutine" {
					o.Dialer = &goroutineDialer{}
				}
			})
			tok := s.mint(t, principalA, time.Hour, nil)
			type result struct {
				c   *harness.Client
				err error
			}
			done := make(chan result, 1)
			go func() {
				nc, err := net.DialTimeout("tcp", s.px.Addr, 5*time.Second)
				if err != nil {
					done <- result{nil, err}
					return
				}
				c, err := harness.ConnectOver(t, nc, harness.ClientOptions{ClientID: held.clientID, CleanStart: true, KeepAlive: 30,
					AuthMethod: "OAUTH2-JWT", AuthData: []byte(tok)})
				done <- result{c, err}
			}()
			select {
			case <-held.compiled:
			case <-time.After(10 * time.Second):
				t.Fatal("the handshake never compiled its grants")
			}
			grant := "roleDefinitionName: EventGrid TopicSpaces Publisher\n    scope: " + testNamespace + "/topicSpaces/telemetry"
			s.reloadEdited(t, basePolicy, grant, strings.Replace(grant, "Publisher", "Subscriber", 1))
			close(held.release)
			r := <-done
			if r.err != nil {
				t.Fatalf("connect: %v", r.err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := r.c.Publish(ctx, &paho.Publish{Topic: "devices/" + principalA + "/telemetry/temp", QoS: 1, Payload: []byte("revoked")})
			if resp == nil || resp.ReasonCode != 0x87 {
				t.Fatalf("PUBLISH revoked during the handshake: PUBACK %+v (err %v), want 0x87", resp, err)
			}
		})
	}
}

// SPEC 3.4: a denial quoting a very long topic or filter is still answered,
// its Reason String cut to at most 512 bytes and to the client's Maximum
// Packet Size (a whole 65,497-byte topic made an answer the encoder
// refused, and the client was dropped without one).
func TestDenialsOfLongTopicsAreAnswered(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	long := "denied/" + strings.Repeat("x", 65_490)
	tests := []struct {
		name      string
		maxPacket uint32 // the client's Maximum Packet Size; 0 for none
		topic     string
		maxReason int
	}{
		{"topic of 65,497 bytes", 0, long, 512},
		{"client Maximum Packet Size 64", 64, "denied/" + strings.Repeat("y", 100), 64 - 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := harness.ClientOptions{ClientID: "long-" + fmt.Sprint(tt.maxPacket), CleanStart: true, KeepAlive: 30,
				AuthMethod: "OAUTH2-JWT", AuthData: []byte(s.mint(t, principalA, time.Hour, nil))}
			if tt.maxPacket != 0 {
				o.Properties = &paho.ConnectProperties{MaximumPacketSize: &tt.maxPacket}
			}
			c := harness.MustConnect(t, s.px.Addr, o)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := c.Publish(ctx, &paho.Publish{Topic: tt.topic, QoS: 1, Payload: []byte("x")})
			if resp == nil || resp.ReasonCode != 0x87 {
				t.Fatalf("PUBACK %+v (err %v), want 0x87", resp, err)
			}
			reason := ""
			if resp.Properties != nil {
				reason = resp.Properties.ReasonString
			}
			if reason == "" || len(reason) > tt.maxReason || !strings.HasPrefix(reason, "publish to 'denied/") {
				t.Errorf("PUBACK reason of %d bytes %.60q, want a cut reason of at most %d bytes", len(reason), reason, tt.maxReason)
			}
			if tt.maxPacket != 0 {
				return
			}
			// paho reports a SUBACK refusing every filter as an error too.
			ack, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: tt.topic + "/#", QoS: 1}}})
			if ack == nil || len(ack.Reasons) != 1 || ack.Reasons[0] != 0x87 {
				t.Fatalf("SUBACK %+v (err %v), want one 0x87", ack, err)
			}
			if r := ack.Properties.ReasonString; r == "" || len(r) > tt.maxReason {
				t.Errorf("SUBACK reason of %d bytes, want 1 to %d", len(r), tt.maxReason)
			}
		})
	}
}

// SPEC 2.2, 3.6: re-authentication with a token whose groups lost a role
// ends the connection holding the subscription that role allowed.
func TestReauthGroupsLostRole(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	a := s.connectAs(t, principalA, "grp", map[string]any{"groups": []string{groupOps}})
	subscribe(t, a, "broadcast/#", 1)
	resp := reauth(t, a, "OAUTH2-JWT", s.mint(t, principalA, time.Hour, map[string]any{"groups": []string{}}))
	if !resp.Success {
		t.Fatalf("re-auth refused: %+v", resp)
	}
	d, closed := a.WaitClosed(5 * time.Second)
	if !closed || d == nil || d.ReasonCode != 0x87 || !strings.Contains(d.Properties.ReasonString, "broadcast/#") {
		t.Fatalf("closed %v DISCONNECT %+v, want 0x87 naming broadcast/#", closed, d)
	}
}

// SPEC 3.1: $share/<group>/<filter> is judged on <filter>.
func TestSharedSubscription(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	a := s.connectAs(t, principalA, "shared", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, _ := a.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "$share/g1/devices/" + principalA + "/commands/#", QoS: 1},
		{Topic: "$share/g1/broadcast/#", QoS: 1},
		{Topic: "$SYS/#", QoS: 0},
	}})
	if ack == nil || string(ack.Reasons) != string([]byte{0x01, 0x87, 0x87}) {
		t.Fatalf("SUBACK %+v, want 01 87 87", ack)
	}
}

// wantDenials checks mqtt_authproxy_denials_total by action.
func wantDenials(t *testing.T, reg prometheus.Gatherer, publish, receive, subscribe int) {
	t.Helper()
	want := fmt.Sprintf(`
# HELP mqtt_authproxy_denials_total Operations denied by policy, by action.
# TYPE mqtt_authproxy_denials_total counter
mqtt_authproxy_denials_total{action="publish"} %d
mqtt_authproxy_denials_total{action="receive"} %d
mqtt_authproxy_denials_total{action="subscribe"} %d
`, publish, receive, subscribe)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mqtt_authproxy_denials_total"); err != nil {
		t.Error(err)
	}
}

// waitCounter is counterValue polled until it reaches want or 5 s pass: a
// refused CONNECT is counted after its CONNACK has left.
func waitCounter(t *testing.T, reg prometheus.Gatherer, name, label, value string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := counterValue(t, reg, name, label, value)
		if got >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counterValue is the value of counter name with label = value in reg (0 if
// absent); label "" reads a counter without labels.
func counterValue(t *testing.T, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label == "" {
				return m.GetCounter().GetValue()
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// SPEC 4 keep-alive: the broker counts a client's keep-alive on what the
// proxy forwards. A client whose packets are all answered by the proxy
// (denied PUBLISHes, a SUBSCRIBE denied whole) keeps its own keep-alive, so
// the proxy keeps the broker's: with a 2 s keep-alive the broker would end
// the session after 3 s. The proxy's own PINGREQs' answers are not passed
// on: the client gets exactly the one PINGRESP it asked for.
func TestKeepAliveWhileEveryPacketIsAnswered(t *testing.T) {
	s := newPolicyStack(t, basePolicy)
	props := harness.AppendString([]byte{packets.PropAuthMethod}, "OAUTH2-JWT")
	props = harness.AppendString(append(props, packets.PropAuthData), s.mint(t, principalA, time.Hour, nil))
	raw := harness.DialRaw(t, s.px.Addr)
	raw.Write(harness.ConnectV5{ClientID: "answered", CleanStart: true, KeepAlive: 2, Props: props}.Bytes())
	expectConnack(t, raw, 0)
	got := make(chan byte, 64)
	go func() {
		defer close(got)
		for {
			f, err := raw.ReadFrame(20 * time.Second)
			if err != nil {
				return
			}
			got <- f.Type
		}
	}()
	denied := harness.AppendString(nil, "other/x")
	drop := harness.Packet(0x30, append(harness.AppendVBI(denied, 0), 'q')) // QoS 0: dropped
	sends := [][]byte{
		drop,
		harness.Packet(0x32, append(harness.AppendVBI(append(denied, 0, 1), 0), 'q')),     // QoS 1: PUBACK 0x87
		harness.Packet(0x82, append(harness.AppendString([]byte{0, 2, 0}, "other/#"), 0)), // SUBACK 0x87
		drop, drop,
		harness.Packet(0x32, append(harness.AppendVBI(append(denied, 0, 3), 0), 'q')), // PUBACK 0x87
		drop, drop,
		harness.Packet(0x82, append(harness.AppendString([]byte{0, 4, 0}, "other/#"), 0)), // SUBACK 0x87
		drop,
		{packets.PINGREQ << 4, 0}, // the client's own, last: the broker sees none before
	}
	var types []byte
	for _, p := range sends { // one every 700 ms: 7.7 s, more than twice the broker's 3 s
		raw.Write(p)
		for deadline := time.After(700 * time.Millisecond); ; {
			select {
			case typ, ok := <-got:
				if !ok || typ == packets.DISCONNECT {
					t.Fatalf("connection ended after %v (DISCONNECT: %v)", types, ok)
				}
				types = append(types, typ)
				continue
			case <-deadline:
			}
			break
		}
	}
	// The answers to the last packets may be late on a loaded machine;
	// a stray PINGRESP would come with them.
	for settle := time.After(2 * time.Second); len(types) < 5; {
		select {
		case typ, ok := <-got:
			if !ok {
				t.Fatalf("connection ended after %v", types)
			}
			types = append(types, typ)
			continue
		case <-settle:
		}
		break
	}
	select {
	case typ, ok := <-got:
		if ok {
			types = append(types, typ)
		}
	case <-time.After(200 * time.Millisecond):
	}
	var pingresps int
	for _, typ := range types {
		if typ == packets.PINGRESP {
			pingresps++
		}
	}
	if pingresps != 1 || len(types) != 5 {
		t.Errorf("client got packet types %v, want 2 PUBACKs, 2 SUBACKs and 1 PINGRESP", types)
	}
}

// SPEC 4 topic aliases: the client keeps to the Maximum Packet Size the
// proxy advertises (the broker's), but the topic the proxy puts in place of
// an alias can take a PUBLISH past it, and the broker would end the session
// (DISCONNECT 0x95). The proxy does not send it [MQTT-3.2.2-15]: it answers
// PUBACK 0x83 saying why, and the connection goes on.
func TestTopicAliasResolvedOverTheBrokersLimit(t *testing.T) {
	broker := harness.StartMosquitto(t, "max_packet_size 10000")
	px := harness.StartProxy(t, harness.UpstreamConfig(broker.Addr), proxy.Options{AllowAnonymous: true})
	raw := harness.DialRaw(t, px.Addr)
	raw.Write(harness.ConnectV5{ClientID: "alias-max", CleanStart: true, KeepAlive: 30}.Bytes())
	if ack := expectConnack(t, raw, 0); ack.Properties.MaximumPacketSize == nil || *ack.Properties.MaximumPacketSize != 10000 {
		t.Fatalf("Maximum Packet Size %v, want the broker's 10000", ack.Properties.MaximumPacketSize)
	}
	topic := "t/" + strings.Repeat("x", 2000)
	for i, tt := range []struct {
		topic    string
		payload  int
		wantCode byte
	}{
		{topic, 10, 0x10}, // defines alias 1 (no subscriber: 0x10)
		{"", 9000, 0x83},  // 9 KB as sent, 11 KB with the topic
		{"", 10, 0x10},    // the alias still works
	} {
		rawAliasPublish(raw, tt.topic, 1, uint16(i+1), strings.Repeat("p", tt.payload))
		cp, err := raw.ReadPacket(5 * time.Second)
		if err != nil {
			t.Fatalf("PUBLISH %d: %v, want PUBACK 0x%02x", i+1, err, tt.wantCode)
		}
		ack, ok := cp.Content.(*packets.Puback)
		if !ok || ack.ReasonCode != tt.wantCode {
			t.Fatalf("PUBLISH %d: got %s %+v, want PUBACK 0x%02x", i+1, cp.PacketType(), cp.Content, tt.wantCode)
		}
		if tt.wantCode == 0x83 && (ack.Properties == nil || !strings.Contains(ack.Properties.ReasonString, "broker's maximum packet size 10000")) {
			t.Errorf("PUBACK 0x83 reason %v, want it to name the broker's limit", ack.Properties)
		}
	}
}
