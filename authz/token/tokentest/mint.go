package tokentest

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// MintOption configures Mint.
type MintOption func(*mint)

type mint struct {
	alg     jwa.SignatureAlgorithm
	kid     *string
	headers map[string]any
	key     *Key
}

// WithAlg signs with alg, using the current key if it fits, else the newest
// published key that does.
func WithAlg(alg jwa.SignatureAlgorithm) MintOption { return func(m *mint) { m.alg = alg } }

// WithKid puts kid in the header instead of the signing key's kid.
func WithKid(kid string) MintOption { return func(m *mint) { m.kid = &kid } }

// WithoutKid leaves kid out of the header.
func WithoutKid() MintOption { return func(m *mint) { empty := ""; m.kid = &empty } }

// WithHeader adds a protected header parameter (jku, x5u, typ, crit, …).
// alg and kid are set by the other options and cannot be overridden here.
func WithHeader(name string, value any) MintOption {
	return func(m *mint) {
		if m.headers == nil {
			m.headers = map[string]any{}
		}
		m.headers[name] = value
	}
}

// WithKey signs with k, a key the Issuer need not publish (see NewKey); its
// kid goes in the header unless WithKid or WithoutKid says otherwise.
func WithKey(k *Key) MintOption { return func(m *mint) { m.key = k } }

// Mint signs claims as a compact JWS with the current key (header typ JWT,
// alg, kid). Claims are used as given: nothing is added.
func (i *Issuer) Mint(claims map[string]any, opts ...MintOption) (string, error) {
	var m mint
	for _, o := range opts {
		o(&m)
	}
	key := m.key
	if key == nil {
		var err error
		if key, err = i.signingKey(m.alg); err != nil {
			return "", err
		}
	}
	alg := m.alg
	if alg == "" {
		alg = key.alg
	}
	kid := key.kid
	if m.kid != nil {
		kid = *m.kid
	}
	hdrs := jws.NewHeaders()
	if err := hdrs.Set(jws.TypeKey, "JWT"); err != nil {
		return "", err
	}
	for name, v := range m.headers {
		if err := hdrs.Set(name, v); err != nil {
			return "", fmt.Errorf("tokentest: header %s: %w", name, err)
		}
	}
	if kid != "" {
		if err := hdrs.Set(jws.KeyIDKey, kid); err != nil {
			return "", err
		}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("tokentest: claims: %w", err)
	}
	tok, err := jws.Sign(payload, jws.WithKey(alg, key.priv, jws.WithProtectedHeaders(hdrs)))
	if err != nil {
		return "", fmt.Errorf("tokentest: sign: %w", err)
	}
	return string(tok), nil
}

// MintEntra mints an Entra ID access token for Event Grid of tenant tid and
// object id oid (an app-only token of a service principal), valid for ttl
// from now (a negative ttl gives an expired token). version 1 gives the v1
// shape (iss https://sts.windows.net/{tid}/, aud https://eventgrid.azure.net,
// appid, ver "1.0"), version 2 the v2 shape (iss {URL}/{tid}/v2.0, aud
// https://eventgrid.azure.net/, azp, ver "2.0"); both carry oid, tid, sub,
// iat, nbf, exp. extra is merged last: it adds roles, groups,
// _claim_names, … and a nil value removes a claim.
func (i *Issuer) MintEntra(tid, oid string, version int, extra map[string]any, ttl time.Duration) (string, error) {
	if version != 1 && version != 2 {
		return "", fmt.Errorf("tokentest: Entra token version %d, want 1 or 2", version)
	}
	now := i.now()
	exp := now.Add(ttl)
	// Entra backdates iat and nbf by 5 minutes.
	issued := now
	if exp.Before(now) {
		issued = exp
	}
	issued = issued.Add(-5 * time.Minute)
	appID := "5b2c1e0d-7c3a-4f4e-9d51-" + randomHex(6)
	claims := map[string]any{
		"iss": i.EntraIssuer(tid, version),
		"iat": issued.Unix(),
		"nbf": issued.Unix(),
		"exp": exp.Unix(),
		"aio": "E2ZgYJj" + randomHex(8),
		"idp": "https://sts.windows.net/" + tid + "/",
		"oid": oid,
		"rh":  "0.AAAA" + randomHex(8) + ".",
		"sub": oid,
		"tid": tid,
		"uti": randomHex(11),
	}
	if version == 1 {
		claims["aud"] = "https://eventgrid.azure.net"
		claims["appid"] = appID
		claims["appidacr"] = "1"
		claims["ver"] = "1.0"
	} else {
		claims["aud"] = "https://eventgrid.azure.net/"
		claims["azp"] = appID
		claims["azpacr"] = "1"
		claims["ver"] = "2.0"
	}
	maps.Copy(claims, extra)
	for k, v := range extra {
		if v == nil {
			delete(claims, k)
		}
	}
	return i.Mint(claims)
}

// randomHex returns 2n random hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
