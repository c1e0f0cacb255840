package tokentest

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwe"
)

// Attack helpers: tokens a verifier must refuse. They carry the kid of a
// published key, so only the algorithm or format check can stop them.

// MintNone returns an unsecured JWS (alg none, empty signature) of claims.
func (i *Issuer) MintNone(claims map[string]any) (string, error) {
	return unsigned(map[string]any{"alg": "none", "typ": "JWT", "kid": i.CurrentKey().kid}, claims, "")
}

// MintHS256WithPublicKey returns the classic algorithm confusion token:
// alg HS256, kid of a published RSA key, HMAC keyed with that RSA public
// key's PEM (what a verifier using the JWKS key bytes as an HMAC secret would
// check).
func (i *Issuer) MintHS256WithPublicKey(claims map[string]any) (string, error) {
	k, err := i.signingKey(jwa.RS256)
	if err != nil {
		return "", err
	}
	secret, err := k.PublicPEM()
	if err != nil {
		return "", err
	}
	signingInput, err := unsigned(map[string]any{"alg": "HS256", "typ": "JWT", "kid": k.kid}, claims, "")
	if err != nil {
		return "", err
	}
	signingInput = strings.TrimSuffix(signingInput, ".")
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signingInput))
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
}

// MintJWE returns claims encrypted (not signed) to a published RSA key as a
// five-segment compact JWE (RSA-OAEP-256, A256GCM).
func (i *Issuer) MintJWE(claims map[string]any) (string, error) {
	k, err := i.signingKey(jwa.RS256)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("tokentest: claims: %w", err)
	}
	tok, err := jwe.Encrypt(payload, jwe.WithKey(jwa.RSA_OAEP_256, k.priv.Public().(*rsa.PublicKey)),
		jwe.WithContentEncryption(jwa.A256GCM), jwe.WithCompact())
	if err != nil {
		return "", fmt.Errorf("tokentest: encrypt: %w", err)
	}
	return string(tok), nil
}

// MalformedToken is a named example of data that is not a compact JWS.
type MalformedToken struct {
	Name  string
	Token string
}

// Malformed returns examples of Authentication Data that are not a compact
// JWS, in a fixed order. None is signed: a verifier must refuse them while
// parsing, before any key lookup.
func (i *Issuer) Malformed() []MalformedToken {
	kid := i.CurrentKey().kid
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	hdr := enc(`{"alg":"RS256","typ":"JWT","kid":"` + kid + `"}`)
	pay := enc(`{"iss":"` + i.URL() + `","sub":"x","aud":"a","exp":4102444800}`)
	sig := enc("not a real signature, but valid base64url")
	return []MalformedToken{
		{"empty", ""},
		{"one segment", hdr},
		{"two segments", hdr + "." + pay},
		{"four segments", hdr + "." + pay + "." + sig + "." + sig},
		{"six segments", strings.Repeat(hdr+".", 5) + hdr},
		{"empty header", "." + pay + "." + sig},
		{"empty payload", hdr + ".." + sig},
		{"header not base64url", "%%%." + pay + "." + sig},
		{"standard base64 alphabet", hdr + "." + pay + "." + "ab+/cd"},
		{"base64 padding", hdr + "=." + pay + "." + sig},
		{"newline inside", hdr + ".\n" + pay + "." + sig},
		{"trailing newline", hdr + "." + pay + "." + sig + "\n"},
		{"space inside", hdr + ". " + pay + "." + sig},
		{"header not JSON", enc("alg RS256") + "." + pay + "." + sig},
		{"header JSON array", enc(`["RS256"]`) + "." + pay + "." + sig},
		{"header JSON null", enc(`null`) + "." + pay + "." + sig},
		{"header without alg", enc(`{"typ":"JWT","kid":"`+kid+`"}`) + "." + pay + "." + sig},
		{"header alg not a string", enc(`{"alg":256,"kid":"`+kid+`"}`) + "." + pay + "." + sig},
		{"header with enc", enc(`{"alg":"RS256","enc":"A256GCM","kid":"`+kid+`"}`) + "." + pay + "." + sig},
		{"header with crit", enc(`{"alg":"RS256","crit":["exp"],"exp":1,"kid":"`+kid+`"}`) + "." + pay + "." + sig},
		{"unencoded payload", enc(`{"alg":"RS256","b64":false,"kid":"`+kid+`"}`) + "." + pay + "." + sig},
		{"payload not JSON", hdr + "." + enc("claims") + "." + sig},
		{"payload JSON array", hdr + "." + enc(`[1,2]`) + "." + sig},
		{"payload JSON string", hdr + "." + enc(`"claims"`) + "." + sig},
		{"payload with trailing data", hdr + "." + enc(`{"iss":"x"}{"iss":"y"}`) + "." + sig},
		{"payload truncated", hdr + "." + enc(`{"iss":"x"`) + "." + sig},
		{"signature not base64url", hdr + "." + pay + ".%%%"},
		{"non-canonical base64 tail", hdr + "." + pay + "." + "AB"},
	}
}

// unsigned encodes header and claims and appends sig as the third segment.
func unsigned(header, claims map[string]any, sig string) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + sig, nil
}
