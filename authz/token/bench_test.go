package token_test

import (
	"context"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token/tokentest"
)

// The CONNECT hot path: one realistic Entra v2 token, keys cached. With
// cached, the token was verified before and is found in the verified-token
// cache; otherwise every iteration checks signature and claims in full.
func benchmarkVerify(b *testing.B, alg jwa.SignatureAlgorithm, cached bool) {
	f := newFixture(b, fixtureOptions{noVerifiedCache: !cached})
	claims := f.entraClaims(map[string]any{
		"azp": "5b2c1e0d-7c3a-4f4e-9d51-000000000001", "ver": "2.0", "roles": []string{"Telemetry.Send"},
		"groups": []string{"g1", "g2"}, "site": "plant-7",
	})
	data := []byte(f.mint(b, claims, tokentest.WithAlg(alg)))
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, token.MethodOAuth2JWT, data); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.v.Verify(ctx, token.MethodOAuth2JWT, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B)          { benchmarkVerify(b, jwa.RS256, false) }
func BenchmarkVerifyES256(b *testing.B)          { benchmarkVerify(b, jwa.ES256, false) }
func BenchmarkVerifyRS256SameToken(b *testing.B) { benchmarkVerify(b, jwa.RS256, true) }

// A refused token must be cheap too: an expired one costs a signature check,
// an unknown kid (rate-limited) none.
func BenchmarkVerifyUnknownKid(b *testing.B) {
	f := newFixture(b, fixtureOptions{config: func(c *token.Config) { c.MinRefreshInterval = time.Hour }})
	data := []byte(f.mint(b, f.entraClaims(nil), tokentest.WithKid("unknown")))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Verify(ctx, token.MethodOAuth2JWT, data); err == nil {
			b.Fatal("accepted")
		}
	}
}
