package tokentest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// Issuer is a loopback identity provider. It serves, on one httptest server
// bound to 127.0.0.1:
//
//	GET /.well-known/openid-configuration                 OIDC discovery (issuer = URL())
//	GET /jwks                                             the JWKS
//	GET /{tid}/v2.0/.well-known/openid-configuration      Entra-shaped discovery (issuer URL()/{tid}/v2.0)
//	GET /{tid}/discovery/v2.0/keys                        the same JWKS, Entra layout
//
// so a test configures either issuers[].issuer = URL() or
// entra.authority = URL(). Every tenant id shares the one key set. It is safe
// for concurrent use.
type Issuer struct {
	srv             *httptest.Server
	now             func() time.Time
	discoveryIssuer string

	fetches atomic.Int64

	mu           sync.Mutex
	current      *Key
	published    []*Key
	down         bool
	cacheControl string
	latency      time.Duration
}

// Option configures New.
type Option func(*Issuer)

// WithClock sets the clock of minted iat, nbf and exp (pair it with the
// verifier's Options.Now). Default: time.Now.
func WithClock(now func() time.Time) Option { return func(i *Issuer) { i.now = now } }

// WithDiscoveryIssuer makes /.well-known/openid-configuration announce
// issuer instead of URL(), to test the discovery issuer check.
func WithDiscoveryIssuer(issuer string) Option {
	return func(i *Issuer) { i.discoveryIssuer = issuer }
}

// New starts an identity provider with two published keys, RSA-2048 (current,
// RS256) and EC P-256 (ES256). Close stops it.
func New(opts ...Option) (*Issuer, error) {
	rsaKey, err := GenerateKey(jwa.RS256)
	if err != nil {
		return nil, err
	}
	ecKey, err := GenerateKey(jwa.ES256)
	if err != nil {
		return nil, err
	}
	i := &Issuer{now: time.Now, current: rsaKey, published: []*Key{rsaKey, ecKey}}
	for _, o := range opts {
		o(i)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("tokentest: listen: %w", err)
	}
	i.srv = httptest.NewUnstartedServer(i.routes())
	i.srv.Listener.Close()
	i.srv.Listener = ln
	i.srv.Start()
	return i, nil
}

func (i *Issuer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss := i.discoveryIssuer
		if iss == "" {
			iss = i.URL()
		}
		i.discovery(w, iss, i.URL()+"/jwks")
	})
	mux.HandleFunc("GET /jwks", i.jwks)
	mux.HandleFunc("GET /{tid}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		tid := r.PathValue("tid")
		i.discovery(w, i.EntraIssuer(tid, 2), i.URL()+"/"+tid+"/discovery/v2.0/keys")
	})
	mux.HandleFunc("GET /{tid}/discovery/v2.0/keys", i.jwks)
	return mux
}

func (i *Issuer) discovery(w http.ResponseWriter, issuer, jwksURI string) {
	if i.isDown() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              jwksURI,
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
	})
}

// jwks serves the published keys; FetchCount counts every request, served
// or refused while down, since what it measures is load on the IdP.
func (i *Issuer) jwks(w http.ResponseWriter, r *http.Request) {
	i.fetches.Add(1)
	i.mu.Lock()
	down, cc, latency, keys := i.down, i.cacheControl, i.latency, slices.Clone(i.published)
	i.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
	}
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	doc, err := jwksDocument(keys)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
	_, _ = w.Write(doc)
}

func (i *Issuer) isDown() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.down
}

// URL returns the issuer URL (http://127.0.0.1:port), which is also the
// Entra authority of its tenants.
func (i *Issuer) URL() string { return i.srv.URL }

// EntraIssuer returns the iss of an Entra token of tenant tid: v1
// https://sts.windows.net/{tid}/ or v2 {URL}/{tid}/v2.0.
func (i *Issuer) EntraIssuer(tid string, version int) string {
	if version == 1 {
		return "https://sts.windows.net/" + tid + "/"
	}
	return i.URL() + "/" + tid + "/v2.0"
}

// Close stops the server.
func (i *Issuer) Close() { i.srv.Close() }

// SetDown makes every endpoint answer 503 (true) or serve again (false).
func (i *Issuer) SetDown(down bool) {
	i.mu.Lock()
	i.down = down
	i.mu.Unlock()
}

// SetCacheControl sets the Cache-Control header of JWKS responses ("" sends
// none).
func (i *Issuer) SetCacheControl(v string) {
	i.mu.Lock()
	i.cacheControl = v
	i.mu.Unlock()
}

// SetLatency delays every JWKS response by d, to make concurrent fetches
// overlap.
func (i *Issuer) SetLatency(d time.Duration) {
	i.mu.Lock()
	i.latency = d
	i.mu.Unlock()
}

// FetchCount returns how many JWKS requests (either layout) were received.
func (i *Issuer) FetchCount() int { return int(i.fetches.Load()) }

// CurrentKey returns the key Mint signs with by default.
func (i *Issuer) CurrentKey() *Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.current
}

// RotateOption configures Rotate.
type RotateOption func(*rotation)

type rotation struct{ dropOld bool }

// DropOldKeys removes every previously published key from the JWKS, as an
// emergency rotation would; by default old keys stay published.
func DropOldKeys() RotateOption { return func(r *rotation) { r.dropOld = true } }

// Rotate generates a new key for alg, publishes it and makes it current.
func (i *Issuer) Rotate(alg jwa.SignatureAlgorithm, opts ...RotateOption) error {
	var r rotation
	for _, o := range opts {
		o(&r)
	}
	k, err := GenerateKey(alg)
	if err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if r.dropOld {
		i.published = nil
	}
	i.published = append(i.published, k)
	i.current = k
	return nil
}

// WriteJWKSFile writes the published keys as a JWKS file (for
// issuers[].jwksFile).
func (i *Issuer) WriteJWKSFile(path string) error {
	i.mu.Lock()
	keys := slices.Clone(i.published)
	i.mu.Unlock()
	doc, err := jwksDocument(keys)
	if err != nil {
		return err
	}
	return os.WriteFile(path, doc, 0o600)
}

// WritePEMFile writes the current key's public key as a PEM file.
func (i *Issuer) WritePEMFile(path string) error {
	b, err := i.CurrentKey().PublicPEM()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// WriteCertificateFile writes a self-signed certificate of the current key
// as a PEM file.
func (i *Issuer) WriteCertificateFile(path string) error {
	b, err := i.CurrentKey().CertificatePEM()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// signingKey picks the key for alg: the current one if it fits, else the
// newest published key that does.
func (i *Issuer) signingKey(alg jwa.SignatureAlgorithm) (*Key, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if alg == "" || i.current.fits(alg) {
		return i.current, nil
	}
	for j := len(i.published) - 1; j >= 0; j-- {
		if i.published[j].fits(alg) {
			return i.published[j], nil
		}
	}
	return nil, fmt.Errorf("tokentest: no published key for %s (Rotate(%s) first)", alg, alg)
}
