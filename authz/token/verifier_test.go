package token_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/cert"
	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token/tokentest"
)

// SPEC 2.1: tokens that must be accepted, and the identity they give.
func TestVerifyAccepts(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	now := f.clock.Now()
	v1, err := f.idp.MintEntra(tenant, principalA, 1, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := f.idp.MintEntra(tenant, principalA, 2, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v2Issuer := f.idp.EntraIssuer(tenant, 2)
	tests := []struct {
		name       string
		token      string
		wantName   string
		wantIssuer string
		wantTenant string
	}{
		{name: "entra v2", token: v2, wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "entra v1 maps to the v2 issuer", token: v1, wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "aud without trailing slash", token: f.mint(t, f.entraClaims(map[string]any{"aud": "https://eventgrid.azure.net"})),
			wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "aud array containing an accepted one", token: f.mint(t, f.entraClaims(map[string]any{"aud": []string{"api://x", "https://eventgrid.azure.net/"}})),
			wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "no tid", token: f.mint(t, f.entraClaims(map[string]any{"tid": nil})),
			wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "tid in upper case", token: f.mint(t, f.entraClaims(map[string]any{"tid": strings.ToUpper(tenant)})),
			wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "ES256 with the published EC key", token: f.mint(t, f.entraClaims(nil), tokentest.WithAlg(jwa.ES256)),
			wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "PS256 with the RSA key", token: f.mint(t, f.entraClaims(nil), tokentest.WithAlg(jwa.PS256)),
			wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "no kid, the only RSA key of the set", token: f.mint(t, f.entraClaims(nil), tokentest.WithoutKid()),
			wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "no kid, the only P-256 key of the set", token: f.mint(t, f.entraClaims(nil), tokentest.WithoutKid(), tokentest.WithAlg(jwa.ES256)),
			wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "expired but within clock skew", token: f.mint(t, f.entraClaims(map[string]any{"exp": now.Add(-30 * time.Second).Unix()})),
			wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "nbf and iat ahead within clock skew", token: f.mint(t, f.entraClaims(map[string]any{"nbf": now.Add(30 * time.Second).Unix(), "iat": now.Add(30 * time.Second).Unix()})),
			wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "fractional NumericDate", token: f.mint(t, f.entraClaims(map[string]any{"exp": float64(now.Add(time.Hour).Unix()) + 0.5})),
			wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "typ at+jwt and unknown header parameters", token: f.mint(t, f.entraClaims(nil), tokentest.WithHeader("typ", "at+jwt"), tokentest.WithHeader("x-custom", 1)),
			wantName: principalA, wantIssuer: v2Issuer, wantTenant: tenant},
		{name: "generic issuer, principal sub, per-issuer audience", token: f.mint(t, f.customClaims(nil)),
			wantName: "device-1", wantIssuer: f.idp.URL()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := f.v.Verify(context.Background(), token.MethodOAuth2JWT, []byte(tt.token))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.AuthenticationName != tt.wantName || id.Issuer != tt.wantIssuer || id.TenantID != tt.wantTenant {
				t.Errorf("got name %q issuer %q tenant %q, want %q %q %q",
					id.AuthenticationName, id.Issuer, id.TenantID, tt.wantName, tt.wantIssuer, tt.wantTenant)
			}
			if id.Method != token.MethodOAuth2JWT {
				t.Errorf("got method %q, want %q", id.Method, token.MethodOAuth2JWT)
			}
			if id.ExpiresAt.IsZero() {
				t.Errorf("got zero ExpiresAt")
			}
		})
	}
}

// SPEC 2.1: every algorithm of the allow-list verifies, picked up after a
// key rotation through the kid-miss refetch.
func TestVerifyAlgorithms(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, alg := range []jwa.SignatureAlgorithm{
		jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512,
		jwa.ES256, jwa.ES384, jwa.ES512, jwa.EdDSA,
	} {
		t.Run(alg.String(), func(t *testing.T) {
			if err := f.idp.Rotate(alg); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(f.cfg.MinRefreshInterval) // let the kid miss refetch
			if err := f.verify(f.mint(t, f.entraClaims(nil))); err != nil {
				t.Errorf("got %v, want %s accepted", err, alg)
			}
		})
	}
}

// SPEC 2.1: the exp boundary: expired from exp + skew on.
func TestExpiryBoundary(t *testing.T) {
	f := newFixture(t, fixtureOptions{config: func(c *token.Config) { c.ClockSkew = 0 }})
	now := f.clock.Now()
	tests := []struct {
		name string
		exp  time.Time
		want error
	}{
		{"exp one second ahead", now.Add(time.Second), nil},
		{"exp now", now, token.ErrExpired},
		{"exp one second ago", now.Add(-time.Second), token.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.verify(f.mint(t, f.entraClaims(map[string]any{"exp": tt.exp.Unix(), "iat": nil, "nbf": nil})))
			if !errors.Is(err, tt.want) && (err != nil || tt.want != nil) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// SPEC 2.1, 2: every rejection wraps exactly its sentinel; Reason is the
// sentinel's fixed text and never contains the token.
func TestVerifyRejections(t *testing.T) {
	var hits atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "trap", http.StatusTeapot)
	}))
	t.Cleanup(trap.Close)

	f := newFixture(t, fixtureOptions{config: func(c *token.Config) {
		c.Issuers = append(c.Issuers, token.IssuerConfig{
			Issuer: "urn:custom-method", JWKSURL: c.Entra.Authority + "/jwks", Method: token.MethodCustomJWT,
			Audiences: []string{customAud},
		})
	}})
	now := f.clock.Now()
	stranger := tokentest.NewKey(t, jwa.RS256)
	strangerP384 := tokentest.NewKey(t, jwa.ES384)
	ecKid := ""
	if tok := f.mint(t, f.entraClaims(nil), tokentest.WithAlg(jwa.ES256)); tok != "" {
		ecKid = headerKid(t, tok)
	}
	must := func(tok string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := f.mint(t, f.entraClaims(nil))
	parts := strings.Split(valid, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[0] ^= 0xff
	tamperedSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	swappedPayload := parts[0] + "." + strings.Split(f.mint(t, f.entraClaims(map[string]any{"oid": principalB})), ".")[1] + "." + parts[2]

	tests := []struct {
		name   string
		method string
		token  string
		want   error
	}{
		// SPEC 2.1 format and algorithm
		{name: "JWE", token: must(f.idp.MintJWE(f.entraClaims(nil))), want: token.ErrMalformed},
		{name: "alg none", token: must(f.idp.MintNone(f.entraClaims(nil))), want: token.ErrAlgorithm},
		{name: "alg none with a copied signature", token: strings.TrimSuffix(must(f.idp.MintNone(f.entraClaims(nil))), ".") + "." + parts[2], want: token.ErrAlgorithm},
		{name: "HS256 keyed with the RSA public key", token: must(f.idp.MintHS256WithPublicKey(f.entraClaims(nil))), want: token.ErrAlgorithm},
		{name: "RS256 token naming the EC key", token: f.mint(t, f.entraClaims(nil), tokentest.WithKey(stranger), tokentest.WithKid(ecKid)), want: token.ErrAlgorithm},
		{name: "ES384 token naming the P-256 key", token: f.mint(t, f.entraClaims(nil), tokentest.WithKey(strangerP384), tokentest.WithKid(ecKid)), want: token.ErrAlgorithm},
		{name: "ES256 signed with a P-384 key", token: f.mint(t, f.entraClaims(nil), tokentest.WithKey(strangerP384), tokentest.WithAlg(jwa.ES256), tokentest.WithKid(ecKid)), want: token.ErrSignature},
		// SPEC 2.1 signature and keys
		{name: "signature bytes altered", token: tamperedSig, want: token.ErrSignature},
		{name: "payload swapped", token: swappedPayload, want: token.ErrSignature},
		{name: "empty signature", token: parts[0] + "." + parts[1] + ".", want: token.ErrSignature},
		{name: "stranger key with a published kid", token: f.mint(t, f.entraClaims(nil), tokentest.WithKey(stranger), tokentest.WithKid(f.idp.CurrentKey().KeyID())), want: token.ErrSignature},
		{name: "unknown kid", token: f.mint(t, f.entraClaims(nil), tokentest.WithKey(stranger)), want: token.ErrUnknownKey},
		{name: "jku and x5u pointing at a trap", token: f.mint(t, f.entraClaims(nil), tokentest.WithKey(stranger),
			tokentest.WithHeader("jku", trap.URL+"/jwks"), tokentest.WithHeader("x5u", trap.URL+"/cert.pem")), want: token.ErrUnknownKey},
		{name: "jku trap with a published kid", token: f.mint(t, f.entraClaims(nil), tokentest.WithKey(stranger),
			tokentest.WithKid(f.idp.CurrentKey().KeyID()), tokentest.WithHeader("jku", trap.URL+"/jwks")), want: token.ErrSignature},
		{name: "embedded jwk header of the signing key", token: embeddedJWK(t, f, stranger), want: token.ErrUnknownKey},
		{name: "x5c header of the signing key", token: x5cToken(t, f, stranger), want: token.ErrUnknownKey},
		// SPEC 2.1 claims
		{name: "wrong aud string", token: f.mint(t, f.entraClaims(map[string]any{"aud": "https://management.azure.com/"})), want: token.ErrAudience},
		{name: "wrong aud array", token: f.mint(t, f.entraClaims(map[string]any{"aud": []string{"a", "b"}})), want: token.ErrAudience},
		{name: "empty aud array", token: f.mint(t, f.entraClaims(map[string]any{"aud": []string{}})), want: token.ErrAudience},
		{name: "empty aud string", token: f.mint(t, f.entraClaims(map[string]any{"aud": ""})), want: token.ErrAudience},
		{name: "no aud", token: f.mint(t, f.entraClaims(map[string]any{"aud": nil})), want: token.ErrAudience},
		{name: "Entra audience at the generic issuer with its own list", token: f.mint(t, f.customClaims(map[string]any{"aud": "https://eventgrid.azure.net/"})), want: token.ErrAudience},
		{name: "aud array with a number", token: f.mint(t, f.entraClaims(map[string]any{"aud": []any{1, "https://eventgrid.azure.net/"}})), want: token.ErrMalformed},
		{name: "wrong iss", token: f.mint(t, f.entraClaims(map[string]any{"iss": "https://evil.example/" + tenant + "/v2.0"})), want: token.ErrIssuer},
		{name: "iss of another tenant", token: f.mint(t, f.entraClaims(map[string]any{"iss": f.idp.EntraIssuer(otherTenant, 2)})), want: token.ErrIssuer},
		{name: "iss with a trailing slash", token: f.mint(t, f.entraClaims(map[string]any{"iss": f.idp.EntraIssuer(tenant, 2) + "/"})), want: token.ErrIssuer},
		{name: "no iss", token: f.mint(t, f.entraClaims(map[string]any{"iss": nil})), want: token.ErrIssuer},
		{name: "iss not a string", token: f.mint(t, f.entraClaims(map[string]any{"iss": 42})), want: token.ErrMalformed},
		{name: "tid of another tenant", token: f.mint(t, f.entraClaims(map[string]any{"tid": otherTenant})), want: token.ErrTenant},
		{name: "v1 token with another tid", token: f.mint(t, f.entraClaims(map[string]any{"iss": f.idp.EntraIssuer(tenant, 1), "tid": otherTenant})), want: token.ErrTenant},
		{name: "tid not a string", token: f.mint(t, f.entraClaims(map[string]any{"tid": 7})), want: token.ErrTenant},
		{name: "expired", token: f.mint(t, f.entraClaims(map[string]any{"exp": now.Add(-time.Hour).Unix()})), want: token.ErrExpired},
		{name: "expired just beyond skew", token: f.mint(t, f.entraClaims(map[string]any{"exp": now.Add(-61 * time.Second).Unix()})), want: token.ErrExpired},
		{name: "nbf in the future", token: f.mint(t, f.entraClaims(map[string]any{"nbf": now.Add(time.Hour).Unix()})), want: token.ErrNotYetValid},
		{name: "iat in the future", token: f.mint(t, f.entraClaims(map[string]any{"iat": now.Add(2 * time.Minute).Unix()})), want: token.ErrNotYetValid},
		{name: "no exp", token: f.mint(t, f.entraClaims(map[string]any{"exp": nil})), want: token.ErrMissingExpiry},
		{name: "exp a string", token: f.mint(t, f.entraClaims(map[string]any{"exp": "tomorrow"})), want: token.ErrMalformed},
		{name: "exp beyond year 9999", token: f.mint(t, f.entraClaims(map[string]any{"exp": 1e300})), want: token.ErrMalformed},
		{name: "no oid", token: f.mint(t, f.entraClaims(map[string]any{"oid": nil})), want: token.ErrMissingPrincipal},
		{name: "empty oid", token: f.mint(t, f.entraClaims(map[string]any{"oid": ""})), want: token.ErrMissingPrincipal},
		{name: "oid not a string", token: f.mint(t, f.entraClaims(map[string]any{"oid": 12})), want: token.ErrMissingPrincipal},
		{name: "generic issuer without sub", token: f.mint(t, f.customClaims(map[string]any{"sub": nil})), want: token.ErrMissingPrincipal},
		// The method check; choosing 0x8C is the proxy's job.
		{name: "CUSTOM-JWT issuer, token sent as OAUTH2-JWT", token: f.mint(t, f.customClaims(map[string]any{"iss": "urn:custom-method"})), want: token.ErrMethod},
		{name: "Entra token sent as CUSTOM-JWT", method: token.MethodCustomJWT, token: valid, want: token.ErrMethod},
		// SPEC 2: size
		{name: "over 8 KiB", token: strings.Repeat("a", 8193), want: token.ErrTooLarge},
	}
	for _, m := range f.idp.Malformed() {
		tests = append(tests, struct {
			name   string
			method string
			token  string
			want   error
		}{name: "malformed: " + m.Name, token: m.Token, want: token.ErrMalformed})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = token.MethodOAuth2JWT
			}
			id, err := f.v.Verify(context.Background(), method, []byte(tt.token))
			if id != nil {
				t.Errorf("got identity %v with error %v, want nil", id.AuthenticationName, err)
			}
			checkSentinel(t, err, tt.want)
			if got := token.Reason(err); got != tt.want.Error() {
				t.Errorf("got Reason %q, want %q", got, tt.want.Error())
			}
			for _, p := range tokenParts(tt.token) {
				if strings.Contains(token.Reason(err), p) {
					t.Errorf("Reason %q contains token bytes", token.Reason(err))
				}
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("got %d requests to URLs named by token headers, want 0 (SPEC 2.1)", n)
	}
}

// SPEC 2.1: a token without kid is refused when the set has several keys
// that fit its alg (the verifier never guesses).
func TestNoKidAmbiguous(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	if err := f.idp.Rotate(jwa.RS256); err != nil { // two RSA keys now
		t.Fatal(err)
	}
	f.clock.Advance(f.cfg.MinRefreshInterval)
	if err := f.verify(f.mint(t, f.entraClaims(nil))); err != nil { // picks up the new set
		t.Fatalf("token with the new kid: %v", err)
	}
	err := f.verify(f.mint(t, f.entraClaims(nil), tokentest.WithoutKid()))
	checkSentinel(t, err, token.ErrUnknownKey)
}

// SPEC 2, 4: data over the limit is refused before parsing: garbage that
// parsing would call malformed reports too_large, a limit of 100 applies,
// and the largest valid token under the default limit is accepted.
func TestTooLarge(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	before := f.idp.FetchCount()
	checkSentinel(t, f.verify(strings.Repeat("%", 8193)), token.ErrTooLarge)

	var near, over string
	for pad := 5000; pad < 6500 && over == ""; pad++ {
		tok := f.mint(t, f.entraClaims(map[string]any{"pad": strings.Repeat("x", pad)}))
		switch {
		case len(tok) <= token.DefaultMaxTokenSize:
			near = tok
		default:
			over = tok
		}
	}
	if len(near) < token.DefaultMaxTokenSize-3 || over == "" {
		t.Fatalf("could not build tokens around the limit: %d / %d bytes", len(near), len(over))
	}
	if err := f.verify(near); err != nil {
		t.Errorf("token of %d bytes: got %v, want accepted", len(near), err)
	}
	checkSentinel(t, f.verify(over), token.ErrTooLarge)
	if got := f.idp.FetchCount() - before; got != 0 {
		t.Errorf("got %d key fetches, want 0", got)
	}

	small := newFixture(t, fixtureOptions{maxSize: 100})
	checkSentinel(t, small.verify(strings.Repeat("a", 101)), token.ErrTooLarge)
}

// SPEC 2.2: v1 and v2 tokens of one oid are the same principal; another
// oid is not.
func TestSamePrincipalAcrossVersions(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	verify := func(oid string, version int) *authz.Identity {
		t.Helper()
		tok, err := f.idp.MintEntra(tenant, oid, version, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		id, err := f.v.Verify(context.Background(), token.MethodOAuth2JWT, []byte(tok))
		if err != nil {
			t.Fatalf("v%d: %v", version, err)
		}
		return id
	}
	a1, a2, b2 := verify(principalA, 1), verify(principalA, 2), verify(principalB, 2)
	if !a1.SamePrincipal(a2) {
		t.Errorf("v1 %v and v2 %v of one oid: got different principals, want same", a1.LogValue(), a2.LogValue())
	}
	if a2.SamePrincipal(b2) {
		t.Errorf("two oids: got same principal, want different")
	}
}

// A tenant in a sovereign cloud is configured by its authority alone: v2
// tokens carry the authority as issuer, v1 tokens the cloud's STS host
// (sts.windows.net but in Azure China), and no other cloud's v1 issuer is
// taken for it.
func TestSovereignCloudIssuers(t *testing.T) {
	const (
		stsPublic = "https://sts.windows.net/"
		stsChina  = "https://sts.chinacloudapi.cn/"
	)
	tests := []struct {
		authority   string
		v1, wrongV1 string
	}{
		{"https://login.microsoftonline.com", stsPublic, stsChina},
		{"https://login.microsoftonline.us", stsPublic, stsChina},
		{"https://login.chinacloudapi.cn", stsChina, stsPublic},
		{"https://login.partner.microsoftonline.cn/", stsChina, stsPublic},
	}
	for _, tt := range tests {
		t.Run(tt.authority, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{reroute: true, config: func(c *token.Config) {
				c.Entra.Authority = tt.authority
				c.Issuers = nil
			}})
			v2 := strings.TrimSuffix(tt.authority, "/") + "/" + tenant + "/v2.0"
			for _, iss := range []string{v2, tt.v1 + tenant + "/"} {
				if err := f.verify(f.mint(t, f.entraClaims(map[string]any{"iss": iss}))); err != nil {
					t.Errorf("iss %s: got %v, want accepted", iss, err)
				}
			}
			err := f.verify(f.mint(t, f.entraClaims(map[string]any{"iss": tt.wrongV1 + tenant + "/"})))
			checkSentinel(t, err, token.ErrIssuer)
		})
	}
}

func TestSupportsMethod(t *testing.T) {
	f := newFixture(t, fixtureOptions{noRun: true, config: func(c *token.Config) {
		c.Issuers[0].Method = token.MethodCustomJWT
	}})
	tests := []struct {
		method string
		want   bool
	}{
		{token.MethodOAuth2JWT, true},
		{token.MethodCustomJWT, true},
		{"oauth2-jwt", false},
		{"SCRAM-SHA-256", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := f.v.SupportsMethod(tt.method); got != tt.want {
			t.Errorf("SupportsMethod(%q): got %v, want %v", tt.method, got, tt.want)
		}
	}
	only := newFixture(t, fixtureOptions{noRun: true, config: func(c *token.Config) { c.Issuers = nil }})
	if only.v.SupportsMethod(token.MethodCustomJWT) {
		t.Errorf("Entra only: got CUSTOM-JWT supported, want not")
	}
}

// headerKid returns the kid of a compact JWS.
func headerKid(t *testing.T, tok string) string {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(h), `"kid":"`)
	if !ok {
		t.Fatalf("no kid in %s", h)
	}
	kid, _, _ := strings.Cut(after, `"`)
	return kid
}

// embeddedJWK signs with k and embeds k's public JWK in the header (the
// CVE-2018-0114 shape): the verifier must not use it.
func embeddedJWK(t *testing.T, f *fixture, k *tokentest.Key) string {
	t.Helper()
	pub, err := k.PublicJWK()
	if err != nil {
		t.Fatal(err)
	}
	return f.mint(t, f.entraClaims(nil), tokentest.WithKey(k), tokentest.WithHeader("jwk", pub))
}

// x5cToken signs with k and puts k's certificate in x5c.
func x5cToken(t *testing.T, f *fixture, k *tokentest.Key) string {
	t.Helper()
	certPEM, err := k.CertificatePEM()
	if err != nil {
		t.Fatal(err)
	}
	der := strings.TrimSpace(string(certPEM))
	der = strings.TrimPrefix(der, "-----BEGIN CERTIFICATE-----")
	der = strings.TrimSuffix(der, "-----END CERTIFICATE-----")
	der = strings.ReplaceAll(der, "\n", "")
	var chain cert.Chain
	if err := chain.AddString(der); err != nil {
		t.Fatal(err)
	}
	return f.mint(t, f.entraClaims(nil), tokentest.WithKey(k), tokentest.WithHeader("x5c", &chain))
}
