package token_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token/tokentest"
	"github.com/mqtt-authproxy/mqtt-authproxy/test/syncbuf"
)

const (
	tenant      = "11111111-2222-3333-4444-555555555555"
	otherTenant = "99999999-2222-3333-4444-555555555555"
	principalA  = "aaaaaaaa-0000-0000-0000-00000000000a"
	principalB  = "bbbbbbbb-0000-0000-0000-00000000000b"
	customAud   = "mqtt://custom"
)

// allSentinels is the closed set of token errors.
var allSentinels = []error{
	token.ErrTooLarge, token.ErrMalformed, token.ErrAlgorithm, token.ErrSignature,
	token.ErrUnknownKey, token.ErrExpired, token.ErrNotYetValid, token.ErrMissingExpiry,
	token.ErrAudience, token.ErrIssuer, token.ErrTenant, token.ErrMissingPrincipal,
	token.ErrMethod, token.ErrKeysUnavailable,
}

// clock is a settable clock shared by the verifier and the IdP's minting.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a log sink for tests.
type syncBuffer = syncbuf.Buffer

// fixture is a loopback IdP and a verifier trusting it twice: as Entra
// tenant `tenant` (authority = IdP URL) and as a generic OIDC issuer (IdP
// URL, discovery, audience customAud, principal sub).
type fixture struct {
	idp   *tokentest.Issuer
	v     *token.Verifier
	cfg   token.Config
	clock *clock
	logs  *syncBuffer
	reg   *prometheus.Registry
}

type fixtureOptions struct {
	config  func(*token.Config)
	idp     []tokentest.Option
	realNow bool // use time.Now: the background refresh loop needs a moving clock
	noRun   bool
	noWait  bool
	// beforeRun prepares the IdP before the verifier's first fetch.
	beforeRun func(*fixture)
	maxSize   int
	// noVerifiedCache verifies every token in full (token.Options).
	noVerifiedCache bool
	// reroute sends every fetch to the IdP, whatever its URL's host: the
	// configuration may then name hosts unreachable here (a sovereign
	// cloud's authority).
	reroute bool
}

// rerouteTransport sends every request to target's scheme and host.
type rerouteTransport struct{ target *url.URL }

func (rt rerouteTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = rt.target.Scheme, rt.target.Host, ""
	return http.DefaultTransport.RoundTrip(r)
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{clock: newClock(), logs: &syncBuffer{}, reg: prometheus.NewPedanticRegistry()}
	now := f.clock.Now
	if o.realNow {
		now = time.Now
	}
	idp, err := tokentest.New(append([]tokentest.Option{tokentest.WithClock(now)}, o.idp...)...)
	if err != nil {
		t.Fatalf("start IdP: %v", err)
	}
	t.Cleanup(idp.Close)
	f.idp = idp
	f.cfg = token.DefaultConfig()
	f.cfg.Entra.Tenants = []string{tenant}
	f.cfg.Entra.Authority = idp.URL()
	f.cfg.Issuers = []token.IssuerConfig{{Issuer: idp.URL(), Discovery: true, Audiences: []string{customAud}}}
	if o.config != nil {
		o.config(&f.cfg)
	}
	var client *http.Client
	if o.reroute {
		target, err := url.Parse(idp.URL())
		if err != nil {
			t.Fatal(err)
		}
		client = &http.Client{Transport: rerouteTransport{target}, Timeout: 10 * time.Second}
	}
	f.v, err = token.NewVerifier(f.cfg, token.Options{
		HTTPClient:      client,
		Logger:          slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:      f.reg,
		Now:             now,
		MaxTokenSize:    o.maxSize,
		NoVerifiedCache: o.noVerifiedCache,
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	if o.beforeRun != nil {
		o.beforeRun(f)
	}
	if o.noRun {
		return f
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.v.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v, want nil after cancel", err)
		}
	})
	if o.noWait {
		return f
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := f.v.WaitReady(wctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return f
}

// entraClaims are minimal valid v2 claims of principalA; overrides replace
// claims and a nil override removes one.
func (f *fixture) entraClaims(overrides map[string]any) map[string]any {
	now := f.clock.Now()
	c := map[string]any{
		"iss": f.idp.EntraIssuer(tenant, 2), "aud": "https://eventgrid.azure.net/",
		"tid": tenant, "oid": principalA, "sub": principalA,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	return override(c, overrides)
}

// customClaims are minimal valid claims of the generic issuer.
func (f *fixture) customClaims(overrides map[string]any) map[string]any {
	now := f.clock.Now()
	c := map[string]any{
		"iss": f.idp.URL(), "aud": customAud, "sub": "device-1",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	return override(c, overrides)
}

func override(c, overrides map[string]any) map[string]any {
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func (f *fixture) mint(t testing.TB, claims map[string]any, opts ...tokentest.MintOption) string {
	t.Helper()
	tok, err := f.idp.Mint(claims, opts...)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return tok
}

func (f *fixture) verify(tok string) error {
	_, err := f.v.Verify(context.Background(), token.MethodOAuth2JWT, []byte(tok))
	return err
}

// checkSentinel asserts err wraps want and no other sentinel.
func checkSentinel(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
	for _, s := range allSentinels {
		if s != want && errors.Is(err, s) {
			t.Errorf("error %v wraps %v too; want exactly one sentinel", err, s)
		}
	}
}

// tokenParts are substrings whose presence in a log or reason would leak
// the token: the signature and the payload segment.
func tokenParts(tok string) []string {
	parts := strings.Split(tok, ".")
	var out []string
	for _, p := range parts[1:] {
		if len(p) >= 16 {
			out = append(out, p)
		}
	}
	if len(tok) >= 16 {
		out = append(out, tok)
	}
	return out
}
