package token

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// Options are the verifier's collaborators; every field is optional.
type Options struct {
	// HTTPClient fetches discovery documents and JWKS. Default: a client
	// with 5-15 s timeouts and https-preserving redirects. It is only ever
	// given configured URLs, never URLs found in tokens.
	HTTPClient *http.Client
	// Logger receives key fetch and overage events; never a token. Default:
	// discard.
	Logger *slog.Logger
	// Registerer receives the metrics of metrics.go. Default: nil, no
	// metrics are registered.
	Registerer prometheus.Registerer
	// Now is the clock of token times, maxStale and the refetch rate limit
	// (tests). Default: time.Now.
	Now func() time.Time
	// MaxTokenSize is the largest Authentication Data accepted, in bytes;
	// larger data gets ErrTooLarge before any parsing. Default: 8192 (SPEC 7
	// limits.maxAuthDataSize).
	MaxTokenSize int
	// NoVerifiedCache verifies every token in full, even the very bytes of
	// one verified before (benchmarks of the signature path).
	NoVerifiedCache bool
}

// issuer is one trusted token issuer at run time. An Entra tenant is one
// issuer reachable under two iss values (v1 and v2) with one key cache.
type issuer struct {
	id             string // Identity.Issuer: the configured issuer, the v2 one for Entra
	tenant         string // Entra tenant id (lower case), "" otherwise
	method         string
	principalClaim string // "oid" for Entra
	audiences      []string
	keys           *keyCache
}

// Verifier turns MQTT Authentication Data into an authz.Identity (SPEC 2.1).
// It is safe for concurrent use; Verify is the hot path of CONNECT and
// reads key sets without locking.
type Verifier struct {
	skew         time.Duration
	maxTokenSize int
	now          func() time.Time
	log          *slog.Logger
	metrics      *metrics
	client       *http.Client
	ownClient    bool

	byIss   map[string]*issuer // by exact iss value
	caches  []*keyCache        // in configuration order: Entra tenants, then issuers
	methods map[string]bool

	verified   verifiedCache
	noVerified bool

	running atomic.Bool
	mu      sync.Mutex
	changed chan struct{} // closed and replaced when a key set is stored
}

// NewVerifier validates cfg and builds a verifier. It does no I/O: key sets
// are fetched by Run, or on demand by Verify when Run has not fetched them.
// Empty issuer fields take their defaults (principal claim sub, method
// OAUTH2-JWT, discovery when no other key source is set).
func NewVerifier(cfg Config, opts Options) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxTokenSize < 0 {
		return nil, fmt.Errorf("token verifier: negative MaxTokenSize %d", opts.MaxTokenSize)
	}
	v := &Verifier{
		skew:         cfg.ClockSkew,
		maxTokenSize: opts.MaxTokenSize,
		now:          opts.Now,
		log:          opts.Logger,
		client:       opts.HTTPClient,
		byIss:        make(map[string]*issuer),
		methods:      make(map[string]bool),
		changed:      make(chan struct{}),
		noVerified:   opts.NoVerifiedCache,
	}
	if v.maxTokenSize == 0 {
		v.maxTokenSize = DefaultMaxTokenSize
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.client == nil {
		v.client, v.ownClient = newHTTPClient(), true
	}
	m, err := newMetrics(opts.Registerer, v.oldestSuccess)
	if err != nil {
		return nil, err
	}
	v.metrics = m
	t := timing{refresh: cfg.RefreshInterval, minRefresh: cfg.MinRefreshInterval, maxStale: cfg.MaxStale}
	newCache := func(name string, src keySource) *keyCache {
		c := &keyCache{issuer: name, src: src, timing: t, now: v.now, log: v.log, metrics: m, onChange: v.notify}
		v.caches = append(v.caches, c)
		return c
	}

	authority := strings.TrimRight(cfg.Entra.Authority, "/")
	for _, tid := range cfg.Entra.Tenants {
		tid = strings.ToLower(tid)
		is := &issuer{
			id: entraV2Issuer(authority, tid), tenant: tid, method: MethodOAuth2JWT,
			principalClaim: "oid", audiences: cfg.Audiences,
		}
		is.keys = newCache(is.id, &jwksURLSource{client: v.client, url: entraKeysURL(authority, tid)})
		v.byIss[entraV1Issuer(authority, tid)] = is
		v.byIss[is.id] = is
		v.methods[is.method] = true
	}
	for _, ic := range cfg.Issuers {
		is := &issuer{id: ic.Issuer, method: ic.Method, principalClaim: ic.PrincipalClaim, audiences: ic.Audiences}
		if is.method == "" {
			is.method = MethodOAuth2JWT
		}
		if is.principalClaim == "" {
			is.principalClaim = DefaultPrincipalClaim
		}
		if len(is.audiences) == 0 {
			is.audiences = cfg.Audiences
		}
		var src keySource
		switch {
		case ic.JWKSURL != "":
			src = &jwksURLSource{client: v.client, url: ic.JWKSURL}
		case ic.JWKSFile != "":
			src = &fileSource{path: ic.JWKSFile}
		default:
			src = &discoverySource{client: v.client, issuer: ic.Issuer}
		}
		is.keys = newCache(is.id, src)
		v.byIss[is.id] = is
		v.methods[is.method] = true
	}
	return v, nil
}

// Run fetches every issuer's key set at once, then refreshes them in the
// background (SPEC 5) until ctx is done; it then returns nil. Fetch failures
// are logged, counted and retried, never returned: Ready reports them. Run
// must not be called twice at the same time.
func (v *Verifier) Run(ctx context.Context) error {
	if !v.running.CompareAndSwap(false, true) {
		return errors.New("token verifier: Run is already running")
	}
	defer v.running.Store(false)
	var wg sync.WaitGroup
	for _, c := range v.caches {
		wg.Go(func() { c.run(ctx) })
	}
	wg.Wait()
	if v.ownClient {
		v.client.CloseIdleConnections()
	}
	return nil
}

// Ready returns nil once every configured issuer has a key set no older than
// maxStale, else an error naming the issuers without one (/readyz, SPEC 5).
func (v *Verifier) Ready() error {
	now := v.now()
	var missing []string
	for _, c := range v.caches {
		if !c.usable(c.state.Load(), now) {
			missing = append(missing, c.issuer)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no usable signing keys for %s: %w", strings.Join(missing, ", "), ErrKeysUnavailable)
	}
	return nil
}

// WaitReady blocks until Ready returns nil or ctx is done.
func (v *Verifier) WaitReady(ctx context.Context) error {
	for {
		v.mu.Lock()
		changed := v.changed
		v.mu.Unlock()
		err := v.Ready()
		if err == nil {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for signing keys: %w (%v)", ctx.Err(), err)
		}
	}
}

// notify wakes WaitReady callers.
func (v *Verifier) notify() {
	v.mu.Lock()
	close(v.changed)
	v.changed = make(chan struct{})
	v.mu.Unlock()
}

// oldestSuccess is the key freshness gauge: the oldest last successful fetch
// over all issuers in Unix seconds, 0 while one has none.
func (v *Verifier) oldestSuccess() float64 {
	oldest := math.Inf(1)
	for _, c := range v.caches {
		st := c.state.Load()
		if st == nil {
			return 0
		}
		oldest = min(oldest, float64(st.fetchedAt.UnixNano())/1e9)
	}
	if math.IsInf(oldest, 1) {
		return 0
	}
	return oldest
}

// SupportsMethod reports whether some configured issuer uses the MQTT
// Authentication Method method (Entra tenants use OAUTH2-JWT).
func (v *Verifier) SupportsMethod(method string) bool {
	return v.methods[method]
}

// Verify checks the Authentication Data data, received with Authentication
// Method method, as a token of a configured issuer (SPEC 2.1) and returns
// the identity it proves. Every error wraps exactly one of the sentinels of
// errors.go. ctx bounds only the wait for a key set refetch.
func (v *Verifier) Verify(ctx context.Context, method string, data []byte) (*authz.Identity, error) {
	id, err := v.verify(ctx, method, data)
	v.metrics.observe(err)
	if err != nil {
		return nil, err
	}
	v.accepted(id)
	return id, nil
}

// VerifyCached returns the identity of a token that Verify has already
// accepted and that still holds at the current clock and key set, and true;
// otherwise nil and false, and the caller must call Verify, which reports
// the precise error. It never waits (the proxy calls it on its event loop).
func (v *Verifier) VerifyCached(method string, data []byte) (*authz.Identity, bool) {
	if v.noVerified || len(data) > v.maxTokenSize {
		return nil, false
	}
	id := v.verified.lookup(verifiedKey(method, data), v.now(), v.skew)
	if id == nil {
		return nil, false
	}
	v.metrics.verifiedHits.Inc()
	v.metrics.observe(nil)
	v.accepted(id)
	return id, true
}

// accepted reports what an accepted token implies for the operator.
func (v *Verifier) accepted(id *authz.Identity) {
	if id.GroupsOverage {
		// SPEC 2.1: accepted, but group-based assignments do not apply.
		v.metrics.overage.Inc()
		v.log.Warn("token groups overage: group assignments do not apply",
			"principal", id.AuthenticationName, "issuer", id.Issuer)
	}
}

// MaxDataSize is the largest Authentication Data Verify accepts: larger
// data is refused with ErrTooLarge before any parsing, and counted.
func (v *Verifier) MaxDataSize() int { return v.maxTokenSize }

func (v *Verifier) verify(ctx context.Context, method string, data []byte) (*authz.Identity, error) {
	// SPEC 2 / 4: size first, before a single byte is parsed.
	if len(data) > v.maxTokenSize {
		return nil, fmt.Errorf("%d bytes, limit %d: %w", len(data), v.maxTokenSize, ErrTooLarge)
	}
	var key [sha256.Size]byte
	if !v.noVerified {
		key = verifiedKey(method, data)
		if id := v.verified.lookup(key, v.now(), v.skew); id != nil {
			v.metrics.verifiedHits.Inc()
			return id, nil
		}
	}
	t, err := parseCompact(data)
	if err != nil {
		return nil, err
	}
	claims, err := decodeClaims(t.payload)
	if err != nil {
		return nil, err
	}

	// iss only selects among configured issuers; it is never fetched.
	var is *issuer
	switch iss := claims["iss"].(type) {
	case string:
		if is = v.byIss[iss]; is == nil {
			return nil, fmt.Errorf("iss %q: %w", truncate(iss), ErrIssuer)
		}
	case nil:
		return nil, fmt.Errorf("no iss: %w", ErrIssuer)
	default:
		return nil, fmt.Errorf("iss is a %T: %w", iss, ErrMalformed)
	}

	// The set in force before the look-up: if the look-up refetches, the
	// cache entry made below is outdated at once, never wrongly current.
	set := is.keys.state.Load()
	keys, err := is.keys.lookup(ctx, t.header.kid, t.alg.kind)
	if err != nil {
		return nil, err
	}
	if err := checkSignature(t, keys); err != nil {
		return nil, fmt.Errorf("issuer %q: %w", is.id, err)
	}

	// The signature holds: from here on the claims are the issuer's word.
	if method != is.method {
		return nil, fmt.Errorf("issuer %q is configured with %s, token came with %q: %w", is.id, is.method, truncate(method), ErrMethod)
	}
	exp, err := claims.checkTimes(v.now(), v.skew)
	if err != nil {
		return nil, err
	}
	if err := claims.checkAudience(is.audiences); err != nil {
		return nil, err
	}
	if is.tenant != "" {
		if tid, present := claims["tid"]; present {
			if s, ok := tid.(string); !ok || !strings.EqualFold(s, is.tenant) {
				return nil, fmt.Errorf("tid of issuer %q: %w", is.id, ErrTenant)
			}
		}
	}
	principal, ok := claims[is.principalClaim].(string)
	if !ok || principal == "" {
		return nil, fmt.Errorf("claim %s: %w", is.principalClaim, ErrMissingPrincipal)
	}

	id := &authz.Identity{
		AuthenticationName: principal,
		Issuer:             is.id,
		TenantID:           is.tenant,
		Method:             method,
		ExpiresAt:          exp,
	}
	claims.fillIdentity(id)
	v.log.Debug("token verified", "principal", principal, "issuer", is.id, "kid", truncate(t.header.kid))
	if set != nil && !v.noVerified {
		v.verified.store(key, verifiedEntry{id: id, keys: is.keys, set: set, notBefore: claims.notBefore()}, v.now())
		cp := *id
		id = &cp
	}
	return id, nil
}

// checkSignature verifies t with the first candidate key that fits its alg.
// A kid naming a key of another type (RS256 with an EC key) or another alg
// is ErrAlgorithm, not ErrSignature: it is an algorithm confusion attempt
// or a misconfigured signer, not a damaged signature (SPEC 2.1).
func checkSignature(t *compact, keys []*publicKey) error {
	tried := false
	for _, k := range keys {
		if k.kind != t.alg.kind || (k.alg != "" && k.alg != t.alg.name) {
			continue
		}
		tried = true
		if t.alg.verify(k, t.input, t.sig) {
			return nil
		}
	}
	if !tried {
		return fmt.Errorf("alg %s does not fit key %q: %w", t.alg.name, truncate(t.header.kid), ErrAlgorithm)
	}
	return ErrSignature
}
