package token_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token/tokentest"
)

// SPEC 2, 5: IdP down at start and nothing cached → ErrKeysUnavailable
// (0x88), Ready names the issuers; once the IdP is back a CONNECT recovers
// without waiting for the background retry.
func TestKeysUnavailableNothingCached(t *testing.T) {
	f := newFixture(t, fixtureOptions{noRun: true})
	f.idp.SetDown(true)
	tok := f.mint(t, f.entraClaims(nil))
	checkSentinel(t, f.verify(tok), token.ErrKeysUnavailable)
	if err := f.v.Ready(); err == nil || !strings.Contains(err.Error(), f.idp.EntraIssuer(tenant, 2)) || !strings.Contains(err.Error(), f.idp.URL()) {
		t.Errorf("got Ready() = %v, want an error naming both issuers", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := f.v.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got WaitReady() = %v, want deadline exceeded", err)
	}

	f.idp.SetDown(false)
	checkSentinel(t, f.verify(tok), token.ErrKeysUnavailable) // within minRefreshInterval: no new fetch
	f.clock.Advance(f.cfg.MinRefreshInterval)
	if err := f.verify(tok); err != nil {
		t.Errorf("after the IdP recovered: got %v, want accepted", err)
	}
}

// SPEC 5: Verify works without Run, fetching on demand.
func TestVerifyWithoutRun(t *testing.T) {
	f := newFixture(t, fixtureOptions{noRun: true})
	if err := f.verify(f.mint(t, f.entraClaims(nil))); err != nil {
		t.Fatalf("got %v, want accepted", err)
	}
	if got := f.idp.FetchCount(); got != 1 {
		t.Errorf("got %d fetches, want 1", got)
	}
}

// primedFixture is a fixture without the background refresh loop whose
// keys were fetched once, by a Verify, at the fixture clock's start: every
// later fetch is one the test causes. (With the loop running, a fetch of
// its own could overlap the test's steps and make the fetch counts and the
// rate limit depend on scheduling.)
func primedFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	o.noRun = true
	f := newFixture(t, o)
	if err := f.verify(f.mint(t, f.entraClaims(nil))); err != nil {
		t.Fatalf("priming Verify: %v", err)
	}
	if got := f.idp.FetchCount(); got != 1 {
		t.Fatalf("priming Verify made %d fetches, want 1", got)
	}
	return f
}

// SPEC 5: a rotated key is picked up through the kid-miss refetch without a
// restart, at most once per minRefreshInterval.
func TestKeyRotationViaKidMiss(t *testing.T) {
	f := primedFixture(t, fixtureOptions{})
	if err := f.idp.Rotate(jwa.ES256, tokentest.DropOldKeys()); err != nil {
		t.Fatal(err)
	}
	rotated := f.mint(t, f.entraClaims(nil))
	f.clock.Advance(f.cfg.MinRefreshInterval - time.Second)
	before := f.idp.FetchCount()
	checkSentinel(t, f.verify(rotated), token.ErrUnknownKey)
	if got := f.idp.FetchCount() - before; got != 0 {
		t.Errorf("kid miss within minRefreshInterval of the last fetch: got %d fetches, want 0", got)
	}
	f.clock.Advance(time.Second)
	if err := f.verify(rotated); err != nil {
		t.Fatalf("token of the rotated key: got %v, want accepted", err)
	}
	if got := f.idp.FetchCount() - before; got != 1 {
		t.Errorf("got %d fetches, want 1", got)
	}
}

// SPEC 2.1, 5: 1,000 concurrent CONNECTs with random unknown kids cause at
// most one fetch per minRefreshInterval.
func TestUnknownKidStorm(t *testing.T) {
	f := primedFixture(t, fixtureOptions{config: func(c *token.Config) { c.MinRefreshInterval = time.Hour }})
	f.idp.SetLatency(20 * time.Millisecond) // make the fetch overlap the storm
	tokens := make([]string, 1000)
	for i := range tokens {
		var b [12]byte
		_, _ = rand.Read(b[:])
		tokens[i] = f.mint(t, f.entraClaims(nil), tokentest.WithKid(base64.RawURLEncoding.EncodeToString(b[:])))
	}
	storm := func() int {
		before := f.idp.FetchCount()
		var wg sync.WaitGroup
		work := make(chan string)
		errs := make(chan error, len(tokens))
		for range 16 {
			wg.Go(func() {
				for tok := range work {
					errs <- f.verify(tok)
				}
			})
		}
		for _, tok := range tokens {
			work <- tok
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, token.ErrUnknownKey) {
				t.Fatalf("got %v, want %v", err, token.ErrUnknownKey)
			}
		}
		return f.idp.FetchCount() - before
	}
	if got := storm(); got != 0 {
		t.Errorf("storm right after the initial fetch: got %d fetches, want 0", got)
	}
	f.clock.Advance(time.Hour)
	if got := storm(); got != 1 {
		t.Errorf("storm one minRefreshInterval later: got %d fetches, want exactly 1", got)
	}
}

// SPEC 5: concurrent CONNECTs wait for the one refetch instead of starting
// their own, and a caller whose ctx ends stops waiting without failing the
// others.
func TestRefetchIsSingleFlight(t *testing.T) {
	f := primedFixture(t, fixtureOptions{})
	if err := f.idp.Rotate(jwa.RS256); err != nil {
		t.Fatal(err)
	}
	rotated := f.mint(t, f.entraClaims(nil))
	f.idp.SetLatency(300 * time.Millisecond)
	f.clock.Advance(f.cfg.MinRefreshInterval)
	before := f.idp.FetchCount()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() { errs <- f.verify(rotated) })
	}
	_, impatient := f.v.Verify(ctx, token.MethodOAuth2JWT, []byte(rotated))
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("waiting caller: got %v, want accepted", err)
		}
	}
	checkSentinel(t, impatient, token.ErrKeysUnavailable)
	if !errors.Is(impatient, context.DeadlineExceeded) {
		t.Errorf("impatient caller: got %v, want it to wrap context.DeadlineExceeded", impatient)
	}
	if got := f.idp.FetchCount() - before; got != 1 {
		t.Errorf("got %d fetches for 51 concurrent kid misses, want 1", got)
	}
}

// SPEC 5: with the IdP down after start, cached keys keep working up to
// maxStale after the last successful fetch; then the issuer's tokens get
// ErrKeysUnavailable and readiness drops; recovery needs no restart.
func TestIdPDownAfterStart(t *testing.T) {
	f := newFixture(t, fixtureOptions{config: func(c *token.Config) {
		c.MaxStale = time.Hour
		c.Issuers = nil
	}})
	tok := f.mint(t, f.entraClaims(map[string]any{"exp": f.clock.Now().Add(48 * time.Hour).Unix()}))
	f.idp.SetDown(true)

	f.clock.Advance(30 * time.Minute)
	if err := f.verify(tok); err != nil {
		t.Fatalf("IdP down, keys 30m old: got %v, want accepted", err)
	}
	unknown := f.mint(t, f.entraClaims(nil), tokentest.WithKid("not-published"))
	checkSentinel(t, f.verify(unknown), token.ErrUnknownKey) // refetch fails, the set is still good
	if err := f.v.Ready(); err != nil {
		t.Errorf("got Ready() = %v, want nil while within maxStale", err)
	}

	f.clock.Advance(31 * time.Minute)
	checkSentinel(t, f.verify(tok), token.ErrKeysUnavailable)
	if err := f.v.Ready(); err == nil {
		t.Errorf("got Ready() = nil, want an error beyond maxStale")
	}

	f.idp.SetDown(false)
	f.clock.Advance(f.cfg.MinRefreshInterval)
	if err := f.verify(tok); err != nil {
		t.Errorf("after recovery: got %v, want accepted", err)
	}
	if err := f.v.Ready(); err != nil {
		t.Errorf("after recovery: got Ready() = %v, want nil", err)
	}
}

// SPEC 5: Cache-Control max-age is honoured within [minRefreshInterval,
// refreshInterval]: with max-age=0 and a one-hour refreshInterval, the
// background loop refetches every minRefreshInterval.
func TestCacheControlHonoured(t *testing.T) {
	f := newFixture(t, fixtureOptions{realNow: true, noWait: true, config: func(c *token.Config) {
		c.RefreshInterval = time.Hour
		c.MinRefreshInterval = 20 * time.Millisecond
		c.Issuers = nil
	}, beforeRun: func(f *fixture) { f.idp.SetCacheControl("public, max-age=0") }})
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for f.idp.FetchCount() < 4 {
		select {
		case <-deadline:
			t.Fatalf("got %d fetches in 10s, want ≥ 4: max-age=0 not honoured", f.idp.FetchCount())
		case <-tick.C:
		}
	}
}

// SPEC 7 discovery: a discovery document announcing another issuer is
// refused and its jwks_uri never fetched.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	f := newFixture(t, fixtureOptions{noWait: true, idp: []tokentest.Option{tokentest.WithDiscoveryIssuer("https://evil.example")},
		config: func(c *token.Config) { c.Entra.Tenants = nil }})
	tok := f.mint(t, f.customClaims(nil))
	checkSentinel(t, f.verify(tok), token.ErrKeysUnavailable)
	if got := f.idp.FetchCount(); got != 0 {
		t.Errorf("got %d JWKS fetches, want 0", got)
	}
	if err := f.v.Ready(); err == nil {
		t.Errorf("got Ready() = nil, want an error")
	}
}

// SPEC 2.1 key sources: JWKS URL, JWKS file, PEM public key and PEM
// certificate (kid = RFC 7638 thumbprint, or no kid with a single key).
func TestKeySources(t *testing.T) {
	dir := t.TempDir()
	idp, err := tokentest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	files := map[string]func(string) error{
		"jwks.json": idp.WriteJWKSFile,
		"key.pem":   idp.WritePEMFile,
		"cert.pem":  idp.WriteCertificateFile,
	}
	for name, write := range files {
		if err := write(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		src  token.IssuerConfig
		opts []tokentest.MintOption
	}{
		{"JWKS URL", token.IssuerConfig{JWKSURL: idp.URL() + "/jwks"}, nil},
		{"discovery", token.IssuerConfig{Discovery: true}, nil},
		{"discovery implied", token.IssuerConfig{}, nil},
		{"JWKS file", token.IssuerConfig{JWKSFile: filepath.Join(dir, "jwks.json")}, nil},
		{"JWKS file, ES256", token.IssuerConfig{JWKSFile: filepath.Join(dir, "jwks.json")}, []tokentest.MintOption{tokentest.WithAlg(jwa.ES256)}},
		{"PEM public key, thumbprint kid", token.IssuerConfig{JWKSFile: filepath.Join(dir, "key.pem")}, nil},
		{"PEM public key, no kid", token.IssuerConfig{JWKSFile: filepath.Join(dir, "key.pem")}, []tokentest.MintOption{tokentest.WithoutKid()}},
		{"PEM certificate", token.IssuerConfig{JWKSFile: filepath.Join(dir, "cert.pem")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := token.DefaultConfig()
			tt.src.Issuer = idp.URL()
			tt.src.Audiences = []string{customAud}
			cfg.Issuers = []token.IssuerConfig{tt.src}
			v, err := token.NewVerifier(cfg, token.Options{})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := idp.Mint(map[string]any{"iss": idp.URL(), "aud": customAud, "sub": "s", "exp": time.Now().Add(time.Hour).Unix()}, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			id, err := v.Verify(context.Background(), token.MethodOAuth2JWT, []byte(tok))
			if err != nil {
				t.Fatalf("got %v, want accepted", err)
			}
			if id.AuthenticationName != "s" || id.Issuer != idp.URL() || id.TenantID != "" {
				t.Errorf("got %+v, want name s, issuer %s, no tenant", id, idp.URL())
			}
		})
	}

	t.Run("file re-read on kid miss", func(t *testing.T) {
		path := filepath.Join(dir, "rotating.json")
		if err := idp.WriteJWKSFile(path); err != nil {
			t.Fatal(err)
		}
		cfg := token.DefaultConfig()
		cfg.MinRefreshInterval = time.Nanosecond
		cfg.Issuers = []token.IssuerConfig{{Issuer: "urn:file-issuer", JWKSFile: path, Audiences: []string{customAud}}}
		v, err := token.NewVerifier(cfg, token.Options{})
		if err != nil {
			t.Fatal(err)
		}
		claims := map[string]any{"iss": "urn:file-issuer", "aud": customAud, "sub": "s", "exp": time.Now().Add(time.Hour).Unix()}
		first, _ := idp.Mint(claims)
		if _, err := v.Verify(context.Background(), token.MethodOAuth2JWT, []byte(first)); err != nil {
			t.Fatalf("before rotation: %v", err)
		}
		if err := idp.Rotate(jwa.ES384); err != nil {
			t.Fatal(err)
		}
		if err := idp.WriteJWKSFile(path); err != nil {
			t.Fatal(err)
		}
		second, _ := idp.Mint(claims)
		if _, err := v.Verify(context.Background(), token.MethodOAuth2JWT, []byte(second)); err != nil {
			t.Fatalf("after rotating the file: %v", err)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		cfg := token.DefaultConfig()
		cfg.Issuers = []token.IssuerConfig{{Issuer: "urn:file-issuer", JWKSFile: filepath.Join(dir, "absent.json")}}
		v, err := token.NewVerifier(cfg, token.Options{})
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := idp.Mint(map[string]any{"iss": "urn:file-issuer", "aud": "https://eventgrid.azure.net/", "sub": "s", "exp": time.Now().Add(time.Hour).Unix()})
		_, err = v.Verify(context.Background(), token.MethodOAuth2JWT, []byte(tok))
		checkSentinel(t, err, token.ErrKeysUnavailable)
	})

	t.Run("file with only an HMAC key", func(t *testing.T) {
		path := filepath.Join(dir, "oct.json")
		if err := os.WriteFile(path, []byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := token.DefaultConfig()
		cfg.Issuers = []token.IssuerConfig{{Issuer: "urn:file-issuer", JWKSFile: path}}
		v, err := token.NewVerifier(cfg, token.Options{})
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := idp.Mint(map[string]any{"iss": "urn:file-issuer", "aud": "https://eventgrid.azure.net/", "sub": "s", "exp": time.Now().Add(time.Hour).Unix()})
		_, err = v.Verify(context.Background(), token.MethodOAuth2JWT, []byte(tok))
		checkSentinel(t, err, token.ErrKeysUnavailable)
	})
}

// SPEC 5: Ready once every issuer has keys; Run may not run twice at once.
func TestReadyAndRun(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	if err := f.v.Ready(); err != nil {
		t.Errorf("got Ready() = %v, want nil", err)
	}
	if err := f.v.Run(context.Background()); err == nil {
		t.Errorf("second concurrent Run: got nil, want an error")
	}
}
