package token_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token/tokentest"
)

// SPEC 6, STYLE 13: at debug level, across accepted, refused, kid-miss,
// overage and outage paths, no log line holds a token, its payload segment
// or its signature; Reason never does either, and error texts carry no
// token bytes.
func TestTokenNeverLogged(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	stranger := tokentest.NewKey(t, jwa.ES256)
	var tokens []string
	add := func(tok string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	add(f.idp.MintEntra(tenant, principalA, 2, nil, time.Hour))
	add(f.idp.MintEntra(tenant, principalA, 1, map[string]any{"_claim_names": map[string]any{"groups": "s"}}, time.Hour))
	add(f.idp.MintEntra(tenant, principalA, 2, nil, -time.Hour))
	add(f.idp.Mint(f.entraClaims(nil), tokentest.WithKey(stranger)))
	add(f.idp.Mint(f.entraClaims(map[string]any{"aud": "nope"})))
	add(f.idp.MintNone(f.entraClaims(nil)))
	add(f.idp.MintHS256WithPublicKey(f.entraClaims(nil)))
	add(f.idp.MintJWE(f.entraClaims(nil)))
	f.clock.Advance(f.cfg.MinRefreshInterval) // let the unknown kid refetch
	for _, tok := range tokens {
		_, err := f.v.Verify(context.Background(), token.MethodOAuth2JWT, []byte(tok))
		for _, p := range tokenParts(tok) {
			if err != nil && (strings.Contains(err.Error(), p) || strings.Contains(token.Reason(err), p)) {
				t.Errorf("error %q or its Reason contains token bytes", token.Label(err))
			}
		}
	}
	f.idp.SetDown(true)
	f.clock.Advance(f.cfg.MinRefreshInterval)
	_, err := f.v.Verify(context.Background(), token.MethodOAuth2JWT, []byte(tokens[3]))
	if !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("got %v, want unknown key with the IdP down", err)
	}

	logs := f.logs.String()
	for _, want := range []string{"token verified", "token key fetch failed", "token groups overage", "token key miss"} {
		if !strings.Contains(logs, want) {
			t.Fatalf("captured logs lack %q; the assertion below would prove little:\n%s", want, logs)
		}
	}
	for i, tok := range tokens {
		for _, p := range tokenParts(tok) {
			if strings.Contains(logs, p) {
				t.Errorf("token %d (or its payload or signature) appears in the logs", i)
			}
		}
	}
}

// STYLE 17: Reason and Label map the closed set, and nothing else leaks.
func TestReasonAndLabel(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantReason string
		wantLabel  string
	}{
		{"nil", nil, "", "ok"},
		{"unknown error", errors.New("eyJhbGciOi secret"), "token invalid", "other"},
		{"context error", context.Canceled, "token invalid", "other"},
		{"too large", token.ErrTooLarge, "token too large", "too_large"},
		{"malformed", token.ErrMalformed, "token malformed", "malformed"},
		{"algorithm", token.ErrAlgorithm, "algorithm not allowed", "algorithm"},
		{"signature", token.ErrSignature, "signature invalid", "signature"},
		{"unknown key", token.ErrUnknownKey, "signing key not found", "unknown_key"},
		{"expired", token.ErrExpired, "token expired", "expired"},
		{"not yet valid", token.ErrNotYetValid, "token not yet valid", "not_yet_valid"},
		{"missing expiry", token.ErrMissingExpiry, "token has no exp claim", "missing_expiry"},
		{"audience", token.ErrAudience, "audience not accepted", "audience"},
		{"issuer", token.ErrIssuer, "issuer not accepted", "issuer"},
		{"tenant", token.ErrTenant, "tenant does not match issuer", "tenant"},
		{"principal", token.ErrMissingPrincipal, "principal claim missing", "missing_principal"},
		{"method", token.ErrMethod, "authentication method not accepted for this issuer", "method"},
		{"keys", token.ErrKeysUnavailable, "signing keys unavailable", "keys_unavailable"},
		{"wrapped with detail", errors.Join(errors.New("aud \"eyJ...\""), token.ErrAudience), "audience not accepted", "audience"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := token.Reason(tt.err); got != tt.wantReason {
				t.Errorf("got Reason %q, want %q", got, tt.wantReason)
			}
			if got := token.Label(tt.err); got != tt.wantLabel {
				t.Errorf("got Label %q, want %q", got, tt.wantLabel)
			}
		})
	}
}
