package tokentest_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token/tokentest"
)

const tid = "11111111-2222-3333-4444-555555555555"

func newIssuer(t *testing.T, opts ...tokentest.Option) *tokentest.Issuer {
	t.Helper()
	i, err := tokentest.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(i.Close)
	return i
}

func get(t *testing.T, url string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func segments(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("got %d segments, want 3", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

func TestServesDiscoveryAndKeys(t *testing.T) {
	i := newIssuer(t)
	if !strings.HasPrefix(i.URL(), "http://127.0.0.1:") {
		t.Errorf("got URL %s, want loopback", i.URL())
	}
	tests := []struct {
		name, path, wantIssuer, wantJWKS string
	}{
		{"oidc", "/.well-known/openid-configuration", i.URL(), i.URL() + "/jwks"},
		{"entra", "/" + tid + "/v2.0/.well-known/openid-configuration", i.URL() + "/" + tid + "/v2.0", i.URL() + "/" + tid + "/discovery/v2.0/keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := get(t, i.URL()+tt.path)
			var doc struct {
				Issuer  string `json:"issuer"`
				JWKSURI string `json:"jwks_uri"`
			}
			if err := json.Unmarshal(body, &doc); err != nil || code != 200 {
				t.Fatalf("got %d %s", code, body)
			}
			if doc.Issuer != tt.wantIssuer || doc.JWKSURI != tt.wantJWKS {
				t.Errorf("got %+v, want issuer %s jwks_uri %s", doc, tt.wantIssuer, tt.wantJWKS)
			}
			code, body, _ = get(t, doc.JWKSURI)
			set, err := jwk.Parse(body)
			if err != nil || code != 200 || set.Len() != 2 {
				t.Fatalf("JWKS: got %d, %v, %d keys, want 2 keys", code, err, set.Len())
			}
		})
	}
	if got := i.FetchCount(); got != 2 {
		t.Errorf("got FetchCount %d, want 2", got)
	}
	i.SetCacheControl("max-age=60")
	if _, _, h := get(t, i.URL()+"/jwks"); h.Get("Cache-Control") != "max-age=60" {
		t.Errorf("got Cache-Control %q, want max-age=60", h.Get("Cache-Control"))
	}
	i.SetDown(true)
	if code, _, _ := get(t, i.URL()+"/jwks"); code != http.StatusServiceUnavailable {
		t.Errorf("down: got %d, want 503", code)
	}
	if got := i.FetchCount(); got != 4 {
		t.Errorf("got FetchCount %d, want 4 (refused requests count)", got)
	}
}

func TestMintEntraShapes(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	i := newIssuer(t, tokentest.WithClock(func() time.Time { return now }))
	tests := []struct {
		version          int
		wantIss, wantAud string
		wantApp, wantVer string
	}{
		{1, "https://sts.windows.net/" + tid + "/", "https://eventgrid.azure.net", "appid", "1.0"},
		{2, i.URL() + "/" + tid + "/v2.0", "https://eventgrid.azure.net/", "azp", "2.0"},
	}
	for _, tt := range tests {
		tok, err := i.MintEntra(tid, "oid-1", tt.version, map[string]any{"roles": []string{"r"}, "uti": nil}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		h, c := segments(t, tok)
		if h["alg"] != "RS256" || h["kid"] != i.CurrentKey().KeyID() || h["typ"] != "JWT" {
			t.Errorf("v%d header: got %v", tt.version, h)
		}
		if c["iss"] != tt.wantIss || c["aud"] != tt.wantAud || c["ver"] != tt.wantVer || c[tt.wantApp] == nil {
			t.Errorf("v%d claims: got %v", tt.version, c)
		}
		if c["oid"] != "oid-1" || c["sub"] != "oid-1" || c["tid"] != tid || c["exp"] != float64(now.Add(time.Hour).Unix()) {
			t.Errorf("v%d principal/time claims: got %v", tt.version, c)
		}
		if _, ok := c["uti"]; ok {
			t.Errorf("v%d: a nil extra did not remove uti", tt.version)
		}
		if r, _ := c["roles"].([]any); len(r) != 1 {
			t.Errorf("v%d: got roles %v, want [r]", tt.version, c["roles"])
		}
	}
	if _, err := i.MintEntra(tid, "o", 3, nil, time.Hour); err == nil {
		t.Errorf("version 3: got nil, want an error")
	}
}

func TestMintOptionsAndRotate(t *testing.T) {
	i := newIssuer(t)
	stranger := tokentest.NewKey(t, jwa.ES384)
	tests := []struct {
		name    string
		opts    []tokentest.MintOption
		wantAlg string
		wantKid any
		extra   string
	}{
		{"default", nil, "RS256", i.CurrentKey().KeyID(), ""},
		{"ES256 picks the EC key", []tokentest.MintOption{tokentest.WithAlg(jwa.ES256)}, "ES256", nil, ""},
		{"WithKid", []tokentest.MintOption{tokentest.WithKid("k1")}, "RS256", "k1", ""},
		{"WithoutKid", []tokentest.MintOption{tokentest.WithoutKid()}, "RS256", nil, ""},
		{"WithKey", []tokentest.MintOption{tokentest.WithKey(stranger)}, "ES384", stranger.KeyID(), ""},
		{"WithHeader", []tokentest.MintOption{tokentest.WithHeader("jku", "http://x/")}, "RS256", i.CurrentKey().KeyID(), "jku"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := i.Mint(map[string]any{"sub": "s"}, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := segments(t, tok)
			if h["alg"] != tt.wantAlg {
				t.Errorf("got alg %v, want %s", h["alg"], tt.wantAlg)
			}
			if tt.wantKid != nil && h["kid"] != tt.wantKid || tt.name == "WithoutKid" && h["kid"] != nil {
				t.Errorf("got kid %v, want %v", h["kid"], tt.wantKid)
			}
			if tt.extra != "" && h[tt.extra] == nil {
				t.Errorf("header %s missing", tt.extra)
			}
		})
	}
	if _, err := i.Mint(nil, tokentest.WithAlg(jwa.ES512)); err == nil {
		t.Errorf("ES512 without such a key: got nil, want an error")
	}
	old := i.CurrentKey().KeyID()
	if err := i.Rotate(jwa.ES512, tokentest.DropOldKeys()); err != nil {
		t.Fatal(err)
	}
	_, body, _ := get(t, i.URL()+"/jwks")
	set, _ := jwk.Parse(body)
	if set.Len() != 1 {
		t.Errorf("after DropOldKeys: got %d keys, want 1", set.Len())
	}
	if _, found := set.LookupKeyID(old); found {
		t.Errorf("old key still published")
	}
}

func TestAttackShapes(t *testing.T) {
	i := newIssuer(t)
	claims := map[string]any{"sub": "s"}
	none, err := i.MintNone(claims)
	if err != nil || !strings.HasSuffix(none, ".") || strings.Count(none, ".") != 2 {
		t.Errorf("MintNone: got %q, %v", none, err)
	}
	hs, err := i.MintHS256WithPublicKey(claims)
	if h, _ := segments(t, hs); err != nil || h["alg"] != "HS256" {
		t.Errorf("MintHS256WithPublicKey: got header %v, %v", h, err)
	}
	jwe, err := i.MintJWE(claims)
	if err != nil || strings.Count(jwe, ".") != 4 {
		t.Errorf("MintJWE: got %d dots, %v; want 5 segments", strings.Count(jwe, "."), err)
	}
	seen := map[string]bool{}
	for _, m := range i.Malformed() {
		if seen[m.Name] {
			t.Errorf("duplicate malformed example %q", m.Name)
		}
		seen[m.Name] = true
	}
	if len(seen) < 10 {
		t.Errorf("got %d malformed examples, want ≥ 10", len(seen))
	}
}
