package test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token/tokentest"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy"
	"github.com/mqtt-authproxy/mqtt-authproxy/test/harness"
)

const (
	testTenant = "11111111-2222-3333-4444-555555555555"
	principalA = "aaaaaaaa-0000-0000-0000-00000000000a"
	principalB = "bbbbbbbb-0000-0000-0000-00000000000b"
)

// authStack is Mosquitto, a loopback identity provider, and the proxy with
// JWT authentication against it.
type authStack struct {
	broker   *harness.Mosquitto
	idp      *tokentest.Issuer
	px       *harness.Proxy
	verifier *token.Verifier
	// tokenMetrics is the verifier's registry (the proxy's is px.Registry).
	tokenMetrics *prometheus.Registry
}

type stackOption func(*proxy.Config, *proxy.Options, *token.Config)

func newAuthStack(t testing.TB, mutate ...stackOption) *authStack {
	t.Helper()
	idp, err := tokentest.New()
	if err != nil {
		t.Fatalf("start identity provider: %v", err)
	}
	t.Cleanup(idp.Close)
	broker := harness.StartMosquitto(t)
	cfg := harness.UpstreamConfig(broker.Addr)
	tcfg := token.DefaultConfig()
	tcfg.Entra.Tenants = []string{testTenant}
	tcfg.Entra.Authority = idp.URL()
	tcfg.Issuers = []token.IssuerConfig{{
		Issuer: idp.URL(), Discovery: true, PrincipalClaim: "sub",
		Audiences: []string{"mqtt://custom"}, Method: "CUSTOM-JWT",
	}}
	opts := proxy.Options{}
	for _, m := range mutate {
		m(&cfg, &opts, &tcfg)
	}
	logs := &harness.SyncBuffer{}
	s := &authStack{broker: broker, idp: idp, tokenMetrics: prometheus.NewPedanticRegistry()}
	s.verifier, err = token.NewVerifier(tcfg, token.Options{Logger: harness.DebugLogger(logs), Registerer: s.tokenMetrics,
		MaxTokenSize: cfg.Limits.MaxAuthDataSize})
	if err != nil {
		t.Fatalf("token.NewVerifier: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.verifier.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := s.verifier.WaitReady(wctx); err != nil {
		t.Fatalf("verifier not ready: %v", err)
	}
	opts.Authenticator = s.verifier
	opts.ClockSkew = tcfg.ClockSkew
	s.px = harness.StartProxyWithLogs(t, cfg, opts, logs)
	return s
}

// mint returns an Entra v2 token for oid that lives ttl.
func (s *authStack) mint(t testing.TB, oid string, ttl time.Duration, extra map[string]any) string {
	t.Helper()
	tok, err := s.idp.MintEntra(testTenant, oid, 2, extra, ttl)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return tok
}

func (s *authStack) connect(t *testing.T, clientID, method, tok string) (*harness.Client, error) {
	t.Helper()
	return harness.Connect(t, s.px.Addr, harness.ClientOptions{
		ClientID: clientID, CleanStart: true, KeepAlive: 30, AuthMethod: method, AuthData: []byte(tok)})
}

// SPEC 2: a valid token connects; CONNACK echoes the method; the broker sees
// the authentication name as username and no token.
func TestJWTConnectSuccess(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprintf("entra v%d", version), func(t *testing.T) {
			s := newAuthStack(t)
			tok, err := s.idp.MintEntra(testTenant, principalA, version, nil, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.connect(t, "dev1", "OAUTH2-JWT", tok)
			if err != nil {
				t.Fatalf("connect: %v (CONNACK %+v)", err, c.Connack)
			}
			if c.Connack.Properties == nil || c.Connack.Properties.AuthMethod != "OAUTH2-JWT" {
				t.Errorf("CONNACK Authentication Method %+v, want OAUTH2-JWT echoed [MQTT-4.12.0-5]", c.Connack.Properties)
			}
		})
	}
}

// SPEC 2: the upstream CONNECT carries no Authentication Method or Data, the
// authentication name as username and the prefixed client id (SPEC 3.5).
func TestUpstreamSeesNoToken(t *testing.T) {
	fake := harness.StartCaptureBroker(t)
	s := newAuthStack(t, func(c *proxy.Config, _ *proxy.Options, _ *token.Config) { c.Upstream.Address = fake.Addr })
	tok := s.mint(t, principalA, time.Hour, nil)
	if _, err := s.connect(t, "dev1", "OAUTH2-JWT", tok); err != nil {
		t.Fatalf("connect: %v", err)
	}
	cp := fake.Connect(t)
	switch {
	case cp.Properties != nil && (cp.Properties.AuthMethod != "" || len(cp.Properties.AuthData) != 0):
		t.Errorf("upstream CONNECT has Authentication Method %q / %d bytes of data", cp.Properties.AuthMethod, len(cp.Properties.AuthData))
	case strings.Contains(string(fake.Raw()), tok[:40]):
		t.Errorf("token bytes reached the upstream")
	case cp.Username != principalA:
		t.Errorf("upstream username %q, want %q", cp.Username, principalA)
	case cp.ClientID != principalA+"/dev1":
		t.Errorf("upstream client id %q, want %q", cp.ClientID, principalA+"/dev1")
	case cp.PasswordFlag:
		t.Errorf("upstream CONNECT carries a password although none is configured")
	}
}

// SPEC 2 table: every rejection has its exact reason code and a reason
// string naming the cause.
func TestJWTConnectRejections(t *testing.T) {
	s := newAuthStack(t)
	valid := s.mint(t, principalA, time.Hour, nil)
	mintClaims := func(claims map[string]any, opts ...tokentest.MintOption) string {
		t.Helper()
		base := map[string]any{
			"iss": s.idp.URL() + "/" + testTenant + "/v2.0", "aud": "https://eventgrid.azure.net/",
			"tid": testTenant, "oid": principalA, "sub": principalA,
			"iat": time.Now().Unix(), "nbf": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		}
		for k, v := range claims {
			if v == nil {
				delete(base, k)
			} else {
				base[k] = v
			}
		}
		tok, err := s.idp.Mint(base, opts...)
		if err != nil {
			t.Fatalf("mint: %v", err)
		}
		return tok
	}
	must := func(tok string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	base := map[string]any{"iss": s.idp.URL() + "/" + testTenant + "/v2.0", "aud": "https://eventgrid.azure.net/",
		"tid": testTenant, "oid": principalA, "exp": time.Now().Add(time.Hour).Unix()}
	otherKey := tokentest.NewKey(t, jwa.RS256)
	tests := []struct {
		name       string
		method     string
		data       string
		password   string
		wantCode   byte
		wantReason string
	}{
		{name: "no method", wantCode: 0x87, wantReason: "OAUTH2-JWT"},
		{name: "token in password", password: valid, wantCode: 0x87, wantReason: "password"},
		{name: "other method", method: "SCRAM-SHA-256", data: valid, wantCode: 0x8C, wantReason: "method"},
		{name: "malformed JWS", method: "OAUTH2-JWT", data: "not.a.jwt", wantCode: 0x87, wantReason: "malformed"},
		{name: "two segments", method: "OAUTH2-JWT", data: "abc.def", wantCode: 0x87, wantReason: "malformed"},
		{name: "JWE", method: "OAUTH2-JWT", data: must(s.idp.MintJWE(base)), wantCode: 0x87, wantReason: "malformed"},
		{name: "alg none", method: "OAUTH2-JWT", data: must(s.idp.MintNone(base)), wantCode: 0x87, wantReason: "algorithm"},
		{name: "HS256 keyed with the RSA public key", method: "OAUTH2-JWT", data: must(s.idp.MintHS256WithPublicKey(base)), wantCode: 0x87, wantReason: "algorithm"},
		{name: "wrong aud string", method: "OAUTH2-JWT", data: mintClaims(map[string]any{"aud": "https://management.azure.com/"}), wantCode: 0x87, wantReason: "audience"},
		{name: "wrong aud array", method: "OAUTH2-JWT", data: mintClaims(map[string]any{"aud": []string{"a", "b"}}), wantCode: 0x87, wantReason: "audience"},
		{name: "empty aud", method: "OAUTH2-JWT", data: mintClaims(map[string]any{"aud": []string{}}), wantCode: 0x87, wantReason: "audience"},
		{name: "wrong iss", method: "OAUTH2-JWT", data: mintClaims(map[string]any{"iss": "https://evil.example/" + testTenant + "/v2.0"}), wantCode: 0x87, wantReason: "issuer"},
		{name: "tid differs from issuer tenant", method: "OAUTH2-JWT", data: mintClaims(map[string]any{"tid": "99999999-2222-3333-4444-555555555555"}), wantCode: 0x87, wantReason: "tenant"},
		{name: "expired", method: "OAUTH2-JWT", data: mintClaims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), wantCode: 0x87, wantReason: "expired"},
		{name: "nbf in the future", method: "OAUTH2-JWT", data: mintClaims(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}), wantCode: 0x87, wantReason: "not yet valid"},
		{name: "no exp", method: "OAUTH2-JWT", data: mintClaims(map[string]any{"exp": nil}), wantCode: 0x87, wantReason: "exp"},
		{name: "unknown kid", method: "OAUTH2-JWT", data: mintClaims(nil, tokentest.WithKey(otherKey)), wantCode: 0x87, wantReason: "key"},
		{name: "auth data over 8 KiB", method: "OAUTH2-JWT", data: strings.Repeat("a", 8193), wantCode: 0x87, wantReason: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := harness.ClientOptions{ClientID: "x", CleanStart: true, AuthMethod: tt.method, AuthData: []byte(tt.data)}
			if tt.password != "" {
				o.Username, o.Password = "user", []byte(tt.password)
			}
			c, err := harness.Connect(t, s.px.Addr, o)
			if err == nil {
				t.Fatalf("connected, want CONNACK 0x%02x", tt.wantCode)
			}
			if c.Connack == nil {
				t.Fatalf("no CONNACK (err %v), want 0x%02x", err, tt.wantCode)
			}
			reason := ""
			if c.Connack.Properties != nil {
				reason = c.Connack.Properties.ReasonString
			}
			if c.Connack.ReasonCode != tt.wantCode || !strings.Contains(strings.ToLower(reason), strings.ToLower(tt.wantReason)) {
				t.Errorf("CONNACK 0x%02x %q, want 0x%02x with a reason mentioning %q", c.Connack.ReasonCode, reason, tt.wantCode, tt.wantReason)
			}
			if tt.data != "" && len(tt.data) > 20 && strings.Contains(reason, tt.data[:20]) {
				t.Errorf("reason string echoes the token")
			}
		})
	}
	// The refusals are counted by cause, the oversized one too (the
	// proxy's own size check used to keep it from the verifier).
	for _, result := range []string{"too_large", "malformed", "expired"} {
		if n := counterValue(t, s.tokenMetrics, "mqtt_authproxy_token_verifications_total", "result", result); n < 1 {
			t.Errorf(`token_verifications_total{result=%q} = %v, want at least 1`, result, n)
		}
	}
}

// SPEC 4: a malformed CONNECT gets a CONNACK with the reason code the codec
// decided and a Reason String saying what was wrong (the client's Request
// Problem Information is unknown then; MQTT allows a Reason String on a
// CONNACK in any case [MQTT-3.1.2-29]).
func TestMalformedConnect(t *testing.T) {
	s := newAuthStack(t)
	sessionExpiry := []byte{0x11, 0, 0, 0, 10}
	tests := []struct {
		name       string
		connect    harness.ConnectV5
		wantCode   byte
		wantReason string
	}{
		{"client id not UTF-8", harness.ConnectV5{ClientID: "bad\xff", CleanStart: true}, 0x81, "UTF-8"},
		{"U+0000 in the client id", harness.ConnectV5{ClientID: "bad\x00id", CleanStart: true}, 0x81, "U+0000"},
		{"a property twice", harness.ConnectV5{ClientID: "dup", CleanStart: true, Props: append(sessionExpiry, sessionExpiry...)}, 0x82, "duplicate property"},
		{"Will QoS 3", harness.ConnectV5{ClientID: "will", CleanStart: true, Will: &harness.RawWill{Topic: "w", QoS: 3}}, 0x81, "QoS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := harness.DialRaw(t, s.px.Addr)
			raw.Write(tt.connect.Bytes())
			ack := expectConnack(t, raw, tt.wantCode)
			if !strings.Contains(ack.Properties.ReasonString, tt.wantReason) {
				t.Errorf("reason %q, want it to mention %q", ack.Properties.ReasonString, tt.wantReason)
			}
		})
	}
}

// SPEC 4: a CONNECT over limits.maxPacketSize is answered CONNACK 0x95
// naming the limit, not a reset the client cannot explain: a real client
// whose Entra-sized token does not fit a small limit, and a raw CONNECT of
// 600 KB against the default 512 KiB.
func TestOversizedConnect(t *testing.T) {
	t.Run("token over a small limit", func(t *testing.T) {
		s := newAuthStack(t, func(c *proxy.Config, _ *proxy.Options, _ *token.Config) {
			c.Limits.MaxPacketSize, c.Limits.MaxAuthDataSize = 1024, 1024
		})
		tok := s.mint(t, principalA, time.Hour, map[string]any{"pad": strings.Repeat("p", 1024)})
		c, err := harness.Connect(t, s.px.Addr, harness.ClientOptions{ClientID: "big", CleanStart: true,
			AuthMethod: "OAUTH2-JWT", AuthData: []byte(tok)})
		if err == nil || c.Connack == nil || c.Connack.ReasonCode != 0x95 || c.Connack.Properties == nil ||
			!strings.Contains(c.Connack.Properties.ReasonString, "maximum packet size 1024") {
			t.Fatalf("err %v CONNACK %+v, want 0x95 naming the limit", err, c.Connack)
		}
		if n := waitCounter(t, s.px.Registry, "mqtt_authproxy_connects_total", "result", "packet_too_large", 1); n != 1 {
			t.Errorf(`connects_total{result="packet_too_large"} = %v, want 1`, n)
		}
	})
	t.Run("600 KB raw CONNECT", func(t *testing.T) {
		s := newAuthStack(t)
		raw := harness.DialRaw(t, s.px.Addr)
		raw.Write(harness.ConnectV5{ClientID: "huge", CleanStart: true,
			Will: &harness.RawWill{Topic: "w", Payload: strings.Repeat("x", 600_000)}}.Bytes())
		ack := expectConnack(t, raw, 0x95)
		if !strings.Contains(ack.Properties.ReasonString, "maximum packet size 524288") {
			t.Errorf("reason %q, want it to name the limit", ack.Properties.ReasonString)
		}
	})
}

// SPEC 3.4: with Request Problem Information = 0 no reason string is sent.
func TestNoReasonStringWhenProblemInfoOff(t *testing.T) {
	s := newAuthStack(t)
	expired := s.mint(t, principalA, -time.Hour, nil)
	c, err := harness.Connect(t, s.px.Addr, harness.ClientOptions{ClientID: "quiet", CleanStart: true,
		AuthMethod: "OAUTH2-JWT", AuthData: []byte(expired), NoProblemInfo: true})
	if err == nil || c.Connack == nil || c.Connack.ReasonCode != 0x87 {
		t.Fatalf("err %v CONNACK %+v, want 0x87", err, c.Connack)
	}
	if c.Connack.Properties != nil && c.Connack.Properties.ReasonString != "" {
		t.Errorf("reason string %q sent although the client asked for none", c.Connack.Properties.ReasonString)
	}
}

// SPEC 2, 5: with the IdP down and nothing cached, CONNECT gets 0x88.
func TestIdPDownNothingCached(t *testing.T) {
	idp, err := tokentest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	idp.SetDown(true)
	broker := harness.StartMosquitto(t)
	tcfg := token.DefaultConfig()
	tcfg.Entra.Tenants = []string{testTenant}
	tcfg.Entra.Authority = idp.URL()
	v, err := token.NewVerifier(tcfg, token.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = v.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	px := harness.StartProxy(t, harness.UpstreamConfig(broker.Addr), proxy.Options{Authenticator: v})
	tok, err := idp.MintEntra(testTenant, principalA, 2, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := harness.Connect(t, px.Addr, harness.ClientOptions{ClientID: "x", CleanStart: true, AuthMethod: "OAUTH2-JWT", AuthData: []byte(tok)})
	if err == nil || c.Connack == nil || c.Connack.ReasonCode != packets.ConnackServerUnavailable {
		t.Fatalf("err %v CONNACK %+v, want 0x88", err, c.Connack)
	}
}

// SPEC 5: after a key rotation new tokens work without restart (kid miss →
// refetch), and when the IdP goes down cached keys keep working.
func TestKeyRotationAndIdPOutage(t *testing.T) {
	s := newAuthStack(t, func(_ *proxy.Config, _ *proxy.Options, tc *token.Config) { tc.MinRefreshInterval = time.Millisecond })
	if _, err := s.connect(t, "before", "OAUTH2-JWT", s.mint(t, principalA, time.Hour, nil)); err != nil {
		t.Fatalf("connect before rotation: %v", err)
	}
	if err := s.idp.Rotate(jwa.ES256); err != nil {
		t.Fatal(err)
	}
	if _, err := s.connect(t, "after", "OAUTH2-JWT", s.mint(t, principalA, time.Hour, nil)); err != nil {
		t.Fatalf("connect with a token of the rotated key: %v", err)
	}
	s.idp.SetDown(true)
	if _, err := s.connect(t, "outage", "OAUTH2-JWT", s.mint(t, principalA, time.Hour, nil)); err != nil {
		t.Fatalf("connect while the IdP is down (cached keys): %v", err)
	}
}

// SPEC 5: 1,000 CONNECTs with random unknown kids cause at most one key
// fetch per minRefreshInterval.
func TestUnknownKidStorm(t *testing.T) {
	s := newAuthStack(t, func(_ *proxy.Config, _ *proxy.Options, tc *token.Config) { tc.MinRefreshInterval = time.Hour })
	before := s.idp.FetchCount()
	claims := map[string]any{"iss": s.idp.URL() + "/" + testTenant + "/v2.0", "aud": "https://eventgrid.azure.net/",
		"tid": testTenant, "oid": principalA, "exp": time.Now().Add(time.Hour).Unix()}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	codes := make(chan byte, 1000)
	for i := 0; i < 1000; i++ {
		var b [8]byte
		_, _ = rand.Read(b[:])
		tok, err := s.idp.Mint(claims, tokentest.WithKid(base64.RawURLEncoding.EncodeToString(b[:])))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			raw := harness.DialRaw(t, s.px.Addr)
			raw.Write(harness.ConnectV5{ClientID: "storm", CleanStart: true, Props: authProps("OAUTH2-JWT", tok)}.Bytes())
			cp, err := raw.ReadPacket(10 * time.Second)
			if err == nil {
				if ack, ok := cp.Content.(*packets.Connack); ok {
					codes <- ack.ReasonCode
					return
				}
			}
			codes <- 0xff
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != packets.ConnackNotAuthorized {
			t.Fatalf("unknown kid answered 0x%02x, want 0x87", c)
		}
	}
	if fetches := s.idp.FetchCount() - before; fetches > 1 {
		t.Errorf("1,000 unknown kids caused %d key fetches, want at most 1 per minRefreshInterval", fetches)
	}
}

// authProps builds raw CONNECT properties carrying method and data.
func authProps(method, data string) []byte {
	p := harness.AppendString([]byte{packets.PropAuthMethod}, method)
	return harness.AppendString(append(p, packets.PropAuthData), data)
}

func reauth(t *testing.T, c *harness.Client, method, tok string) *paho.AuthResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Authenticate(ctx, &paho.Auth{ReasonCode: packets.AuthReauthenticate,
		Properties: &paho.AuthProperties{AuthMethod: method, AuthData: []byte(tok)}})
	if err != nil {
		t.Fatalf("re-authenticate: %v", err)
	}
	return resp
}

// SPEC 2.2, 2.3: a successful re-authentication moves the expiry: the
// connection outlives the first token's exp + skew.
func TestReauthMovesExpiry(t *testing.T) {
	s := newAuthStack(t, func(_ *proxy.Config, _ *proxy.Options, tc *token.Config) { tc.ClockSkew = 0 })
	first := s.mint(t, principalA, 2*time.Second, nil)
	c, err := s.connect(t, "long", "OAUTH2-JWT", first)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	subscribe(t, c, "alive/#", 1)
	resp := reauth(t, c, "OAUTH2-JWT", s.mint(t, principalA, time.Hour, nil))
	if !resp.Success || resp.ReasonCode != 0 {
		t.Fatalf("re-auth answered %+v, want AUTH 0x00", resp)
	}
	time.Sleep(3 * time.Second) // past the first token's exp
	if d, closed := c.WaitClosed(10 * time.Millisecond); closed {
		t.Fatalf("connection ended after re-authentication: %+v", d)
	}
	pub := harness.MustConnect(t, s.px.Addr, harness.ClientOptions{ClientID: "pub", CleanStart: true,
		AuthMethod: "OAUTH2-JWT", AuthData: []byte(s.mint(t, principalB, time.Hour, nil))})
	publish(t, pub, &paho.Publish{Topic: "alive/1", QoS: 1, Payload: []byte("still here")})
	if got := c.WaitMessages(1, 5*time.Second); len(got) != 1 {
		t.Fatalf("re-authenticated connection got %d messages, want 1", len(got))
	}
}

// SPEC 2.2: a client may re-authenticate again as soon as it has read the
// previous AUTH 0x00.
func TestReauthBackToBack(t *testing.T) {
	s := newAuthStack(t)
	c, err := s.connect(t, "busy", "OAUTH2-JWT", s.mint(t, principalA, time.Hour, nil))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	for i := range 20 {
		if resp := reauth(t, c, "OAUTH2-JWT", s.mint(t, principalA, time.Hour, nil)); !resp.Success {
			t.Fatalf("re-authentication %d refused: %+v", i, resp)
		}
	}
}

// SPEC 2.2: re-authentication failures end the connection with their codes.
func TestReauthFailures(t *testing.T) {
	s := newAuthStack(t)
	tests := []struct {
		name     string
		method   string
		token    func() string
		wantCode byte
	}{
		{"other principal", "OAUTH2-JWT", func() string { return s.mint(t, principalB, time.Hour, nil) }, packets.DisconnectNotAuthorized},
		{"invalid token", "OAUTH2-JWT", func() string { return "x.y.z" }, packets.DisconnectNotAuthorized},
		{"expired token", "OAUTH2-JWT", func() string { return s.mint(t, principalA, -time.Hour, nil) }, packets.DisconnectNotAuthorized},
		{"other method", "CUSTOM-JWT", func() string { return s.mint(t, principalA, time.Hour, nil) }, packets.ConnackBadAuthenticationMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := s.connect(t, "r", "OAUTH2-JWT", s.mint(t, principalA, time.Hour, nil))
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			denial := map[string]string{"event": "authentication", "operation": "reauthenticate", "decision": "deny", "client_id": "r"}
			before := harness.CountAudit(s.px.Logs.String(), denial)
			resp := reauth(t, c, tt.method, tt.token())
			if resp.Success || resp.ReasonCode != tt.wantCode {
				t.Errorf("re-auth answered %+v, want DISCONNECT 0x%02x", resp, tt.wantCode)
			}
			if _, closed := c.WaitClosed(5 * time.Second); !closed {
				t.Errorf("connection still open after failed re-authentication")
			}
			if n := harness.CountAudit(s.px.Logs.String(), denial) - before; n != 1 {
				t.Errorf("%d re-authentication denials audited, want 1", n)
			}
		})
	}
}

// SPEC 2.2: AUTH on a connection without a method is a protocol error.
func TestAuthWithoutMethodAtConnect(t *testing.T) {
	s := newAuthStack(t, func(_ *proxy.Config, o *proxy.Options, tc *token.Config) {
		o.AllowAnonymous = true
		tc.AllowAnonymous = true
	})
	raw := harness.DialRaw(t, s.px.Addr)
	raw.Write(harness.ConnectV5{ClientID: "anon", CleanStart: true, KeepAlive: 30}.Bytes())
	expectConnack(t, raw, 0)
	props := authProps("OAUTH2-JWT", "x.y.z")
	raw.Write(harness.Packet(0xf0, append(harness.AppendVBI([]byte{0x19}, len(props)), props...)))
	expectDisconnect(t, raw, packets.DisconnectProtocolError)
}

// SPEC 2.3: without re-authentication the connection gets DISCONNECT 0xA0
// "token expired" within skew + 1 s of exp.
func TestExpiryWithoutReauth(t *testing.T) {
	s := newAuthStack(t, func(_ *proxy.Config, _ *proxy.Options, tc *token.Config) { tc.ClockSkew = time.Second })
	exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
	tok := s.mint(t, principalA, time.Until(exp), nil)
	c, err := s.connect(t, "short", "OAUTH2-JWT", tok)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	d, closed := c.WaitClosed(10 * time.Second)
	ended := time.Now()
	if !closed || d == nil || d.ReasonCode != packets.DisconnectMaximumConnectTime {
		t.Fatalf("closed %v DISCONNECT %+v, want 0xA0", closed, d)
	}
	if d.Properties == nil || d.Properties.ReasonString != "token expired" {
		t.Errorf("reason string %+v, want 'token expired'", d.Properties)
	}
	if late := ended.Sub(exp.Add(time.Second)); late > time.Second+500*time.Millisecond {
		t.Errorf("ended %s after exp + skew, want within 1 s", late)
	}
	// SPEC 6: one line per disconnect. It is written after the sockets
	// close, and before the connection is counted out.
	for deadline := time.Now().Add(5 * time.Second); s.px.Server.ConnectionCount() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the expired connection was never counted out")
		}
	}
	if n := harness.CountAudit(s.px.Logs.String(), map[string]string{"event": "disconnect", "client_id": "short"}); n != 1 {
		t.Errorf("%d disconnect audit lines, want 1:\n%s", n, s.px.Logs.String())
	}
}

// SPEC 2.3: willOnExpiry decides whether the Will is published when a token
// expires.
func TestWillOnExpiry(t *testing.T) {
	for _, willOnExpiry := range []bool{true, false} {
		t.Run(fmt.Sprintf("willOnExpiry=%v", willOnExpiry), func(t *testing.T) {
			s := newAuthStack(t, func(c *proxy.Config, _ *proxy.Options, tc *token.Config) {
				tc.ClockSkew = 0
				c.Session.WillOnExpiry = willOnExpiry
			})
			watcher := harness.MustConnect(t, s.broker.Addr, harness.ClientOptions{ClientID: "watcher", CleanStart: true})
			subscribe(t, watcher, "wills/#", 1)
			c, err := harness.Connect(t, s.px.Addr, harness.ClientOptions{ClientID: "expiring", CleanStart: true,
				AuthMethod: "OAUTH2-JWT", AuthData: []byte(s.mint(t, principalA, time.Second, nil)),
				Will: &paho.WillMessage{Topic: "wills/expiring", QoS: 1, Payload: []byte("expired")}})
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			if _, closed := c.WaitClosed(5 * time.Second); !closed {
				t.Fatal("connection did not end at expiry")
			}
			ctl := harness.MustConnect(t, s.broker.Addr, harness.ClientOptions{ClientID: "ctl", CleanStart: true})
			publish(t, ctl, &paho.Publish{Topic: "wills/control", QoS: 1, Payload: []byte("control")})
			// The Will may arrive before or after the control message; wait
			// for both (or the timeout, when the Will is rightly absent).
			got := watcher.WaitMessages(2, 2*time.Second)
			gotWill := false
			for _, m := range got {
				gotWill = gotWill || m.Topic == "wills/expiring"
			}
			if gotWill != willOnExpiry {
				t.Errorf("Will published = %v, want %v", gotWill, willOnExpiry)
			}
		})
	}
}

// SPEC 3.5: principal B using principal A's client id cannot receive A's
// queued messages.
func TestSessionIsolationPrefix(t *testing.T) {
	s := newAuthStack(t)
	aTok := s.mint(t, principalA, time.Hour, nil)
	a := harness.MustConnect(t, s.px.Addr, harness.ClientOptions{ClientID: "shared-id", CleanStart: true, SessionExp: 300,
		AuthMethod: "OAUTH2-JWT", AuthData: []byte(aTok), NoAutoClose: true})
	subscribe(t, a, "orders/#", 1)
	if err := a.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		t.Fatal(err)
	}
	pub := harness.MustConnect(t, s.broker.Addr, harness.ClientOptions{ClientID: "pub", CleanStart: true})
	publish(t, pub, &paho.Publish{Topic: "orders/1", QoS: 1, Payload: []byte("for A only")})

	b := harness.MustConnect(t, s.px.Addr, harness.ClientOptions{ClientID: "shared-id", CleanStart: false, SessionExp: 300,
		AuthMethod: "OAUTH2-JWT", AuthData: []byte(s.mint(t, principalB, time.Hour, nil))})
	if b.Connack.SessionPresent {
		t.Errorf("principal B resumed a session under A's client id")
	}
	if got := b.WaitMessages(1, time.Second); len(got) != 0 {
		t.Fatalf("principal B received %d of A's queued messages", len(got))
	}
	a2 := harness.MustConnect(t, s.px.Addr, harness.ClientOptions{ClientID: "shared-id", CleanStart: false, SessionExp: 300,
		AuthMethod: "OAUTH2-JWT", AuthData: []byte(aTok)})
	if got := a2.WaitMessages(1, 5*time.Second); len(got) != 1 {
		t.Fatalf("principal A got %d queued messages back, want 1", len(got))
	}
}

// SPEC 3.5: authentication names may contain '/' (a generic issuer's sub).
// Principal "A/a" must not resume principal A's session: unescaped, prefix
// mode maps A's client id "a/x" and "A/a"'s "x" both to "A/a/x", and owner
// mode lets both own the client id "A/a/x".
func TestSessionIsolationNamesWithSlash(t *testing.T) {
	tests := []struct {
		mode           proxy.Isolation
		first, second  string // client ids of A and of "A/a"
		wantSecondCode byte   // 0: connects without A's session
	}{
		{proxy.IsolationPrefix, "a/x", "x", 0},
		{proxy.IsolationOwner, principalA + "/a/x", principalA + "/a/x", packets.ConnackInvalidClientID},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			s := newAuthStack(t, func(c *proxy.Config, _ *proxy.Options, _ *token.Config) { c.Session.Isolation = tt.mode })
			connect := func(clientID, principal string) (*harness.Client, error) {
				return harness.Connect(t, s.px.Addr, harness.ClientOptions{ClientID: clientID, CleanStart: false, SessionExp: 300,
					AuthMethod: "OAUTH2-JWT", AuthData: []byte(s.mint(t, principal, time.Hour, nil)), NoAutoClose: true})
			}
			a, err := connect(tt.first, principalA)
			if err != nil {
				t.Fatalf("principal A: %v", err)
			}
			if err := a.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
				t.Fatal(err)
			}
			// Control: A itself resumes its session, so SessionPresent below
			// would tell.
			if a, err = connect(tt.first, principalA); err != nil || !a.Connack.SessionPresent {
				t.Fatalf("principal A did not resume its own session: %v", err)
			}
			_ = a.Disconnect(&paho.Disconnect{ReasonCode: 0})

			other := principalA + "/a"
			b, err := connect(tt.second, other)
			if tt.wantSecondCode == 0 {
				if err != nil {
					t.Fatalf("principal %q: %v", other, err)
				}
				if b.Connack.SessionPresent {
					t.Errorf("principal %q resumed principal A's session", other)
				}
				_ = b.Disconnect(&paho.Disconnect{ReasonCode: 0})
				return
			}
			if err == nil || b.Connack == nil || b.Connack.ReasonCode != tt.wantSecondCode {
				t.Fatalf("principal %q: err %v CONNACK %+v, want 0x%02X", other, err, b.Connack, tt.wantSecondCode)
			}
			if p := b.Connack.Properties; p == nil || !strings.Contains(p.ReasonString, "without '/'") {
				t.Errorf("reason %+v does not say why", p)
			}
		})
	}
}

// SPEC 3.5: with an empty client id the proxy assigns one and returns it.
func TestAssignedClientID(t *testing.T) {
	s := newAuthStack(t)
	c, err := s.connect(t, "", "OAUTH2-JWT", s.mint(t, principalA, time.Hour, nil))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if c.Connack.Properties == nil || c.Connack.Properties.AssignedClientID == "" {
		t.Fatalf("CONNACK has no Assigned Client Identifier")
	}
	if strings.Contains(c.Connack.Properties.AssignedClientID, principalA) {
		t.Errorf("assigned id %q exposes the upstream prefix", c.Connack.Properties.AssignedClientID)
	}
}

// SPEC 3.5 owner mode: the client id must be the authentication name or
// start with it and '/'.
func TestSessionIsolationOwner(t *testing.T) {
	s := newAuthStack(t, func(c *proxy.Config, _ *proxy.Options, _ *token.Config) { c.Session.Isolation = proxy.IsolationOwner })
	tok := s.mint(t, principalA, time.Hour, nil)
	if _, err := s.connect(t, principalA+"/sensor", "OAUTH2-JWT", tok); err != nil {
		t.Errorf("own client id refused: %v", err)
	}
	c, err := s.connect(t, principalB+"/sensor", "OAUTH2-JWT", tok)
	if err == nil || c.Connack == nil || c.Connack.ReasonCode != packets.ConnackInvalidClientID {
		t.Errorf("foreign client id: err %v CONNACK %+v, want 0x85", err, c.Connack)
	}
	// The audit names who tried: the token was valid, its principal known.
	if n := harness.WaitCountAudit(s.px.Logs, map[string]string{"event": "authentication", "decision": "deny",
		"principal": principalA, "client_id": principalB + "/sensor"}, 1, 5*time.Second); n != 1 {
		t.Errorf("%d audit lines naming %s for the refused client id, want 1:\n%s", n, principalA, s.px.Logs.String())
	}
}

// SPEC 6: a token never appears in any log line at any level.
func TestTokenNeverLogged(t *testing.T) {
	s := newAuthStack(t)
	good := s.mint(t, principalA, time.Hour, nil)
	c, err := s.connect(t, "logged", "OAUTH2-JWT", good)
	if err != nil {
		t.Fatal(err)
	}
	second := s.mint(t, principalA, 2*time.Hour, nil)
	reauth(t, c, "OAUTH2-JWT", second)
	expired := s.mint(t, principalA, -time.Hour, nil)
	_, _ = s.connect(t, "bad", "OAUTH2-JWT", expired)
	foreign := s.mint(t, principalB, time.Hour, nil)
	reauth(t, c, "OAUTH2-JWT", foreign)
	logs := s.px.Logs.String()
	if !strings.Contains(logs, "connect refused") {
		t.Fatalf("captured logs look empty; the assertion below would prove nothing:\n%s", logs)
	}
	for name, tok := range map[string]string{"valid": good, "re-auth": second, "expired": expired, "foreign": foreign} {
		sig := tok[strings.LastIndex(tok, ".")+1:]
		payload := strings.Split(tok, ".")[1]
		if strings.Contains(logs, sig) || strings.Contains(logs, payload) {
			t.Errorf("%s token (or its signature) appears in the logs", name)
		}
	}
}
