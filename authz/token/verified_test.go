package token_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token/tokentest"
)

const hitsMetric = "mqtt_authproxy_token_verified_cache_hits_total"

// A token presented again (reconnect, re-authentication with the same token)
// is answered from the verified-token cache with the same identity, and the
// copy handed out cannot change what the next caller gets.
func TestVerifiedCacheHit(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tok := []byte(f.mint(t, f.entraClaims(map[string]any{"groups": []string{"g1"}, "site": "plant-7"})))
	ctx := context.Background()
	first, err := f.v.Verify(ctx, token.MethodOAuth2JWT, tok)
	if err != nil {
		t.Fatal(err)
	}
	first.AuthenticationName = "tampered"
	second, err := f.v.Verify(ctx, token.MethodOAuth2JWT, tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, f.reg, hitsMetric, nil); got != 1 {
		t.Errorf("cache hits = %v, want 1", got)
	}
	if second.AuthenticationName != principalA || second.Groups[0] != "g1" || second.Attributes["site"][0] != "plant-7" {
		t.Errorf("cached identity = %+v, want principal %s, group g1, site plant-7", second, principalA)
	}
	// Another method with the same bytes is another key: verified in full
	// and refused (the Entra tenant is configured with OAUTH2-JWT).
	if _, err := f.v.Verify(ctx, token.MethodCustomJWT, tok); !errors.Is(err, token.ErrMethod) {
		t.Errorf("same token, method %s: got %v, want ErrMethod", token.MethodCustomJWT, err)
	}
}

// A cached token is refused once its exp (+ skew) has passed, and before its
// nbf (- skew) could it have been cached at all; either way the error is the
// one full verification gives.
func TestVerifiedCacheExpiry(t *testing.T) {
	f := newFixture(t, fixtureOptions{config: func(c *token.Config) { c.ClockSkew = 0 }})
	now := f.clock.Now()
	tok := f.mint(t, f.entraClaims(map[string]any{"exp": now.Add(time.Minute).Unix()}))
	for range 2 {
		if err := f.verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(time.Minute)
	checkSentinel(t, f.verify(tok), token.ErrExpired)
}

// A key set change (here an emergency rotation that drops the old key)
// invalidates every cached token: the old token is refused with
// ErrUnknownKey, not accepted from the cache.
func TestVerifiedCacheKeySetChange(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	old := f.mint(t, f.entraClaims(nil))
	for range 2 {
		if err := f.verify(old); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.idp.Rotate(jwa.RS256, tokentest.DropOldKeys()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(f.cfg.MinRefreshInterval)
	if err := f.verify(f.mint(t, f.entraClaims(nil))); err != nil { // kid miss: refetch
		t.Fatalf("token of the new key: %v", err)
	}
	checkSentinel(t, f.verify(old), token.ErrUnknownKey)
}
