package token

import "errors"

// The sentinels below are the closed set of reasons a token is refused
// (STYLE 17). Every error returned by Verify wraps exactly one of them, so the
// proxy can pick the reason code with errors.Is (ErrKeysUnavailable → 0x88,
// anything else → 0x87), and Reason and Label give the client-visible reason
// string and the metric label. The text of a sentinel is its reason string.
var (
	// ErrTooLarge: the Authentication Data is larger than
	// Options.MaxTokenSize; it was refused before any parsing (SPEC 2).
	ErrTooLarge = errors.New("token too large")
	// ErrMalformed: not a compact JWS (wrong number of segments, a 5-segment
	// JWE, bytes outside the base64url alphabet, bad base64 or JSON, a claim of
	// the wrong type, a crit header).
	ErrMalformed = errors.New("token malformed")
	// ErrAlgorithm: alg is none, HMAC, unknown, or does not fit the key
	// (SPEC 2.1).
	ErrAlgorithm = errors.New("algorithm not allowed")
	// ErrSignature: the signature does not verify with the issuer's key.
	ErrSignature = errors.New("signature invalid")
	// ErrUnknownKey: no key of the issuer's key set matches the token's kid,
	// even after the rate-limited refetch (SPEC 5).
	ErrUnknownKey = errors.New("signing key not found")
	// ErrExpired: exp + clock skew is in the past.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid: nbf or iat is later than now + clock skew.
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrMissingExpiry: the token has no exp claim (SPEC 2.1: exp required).
	ErrMissingExpiry = errors.New("token has no exp claim")
	// ErrAudience: aud holds none of the accepted audiences.
	ErrAudience = errors.New("audience not accepted")
	// ErrIssuer: iss is not a configured issuer.
	ErrIssuer = errors.New("issuer not accepted")
	// ErrTenant: an Entra token's tid differs from its issuer's tenant.
	ErrTenant = errors.New("tenant does not match issuer")
	// ErrMissingPrincipal: the principal claim (oid for Entra) is absent or
	// not a non-empty string.
	ErrMissingPrincipal = errors.New("principal claim missing")
	// ErrMethod: the token's issuer is configured with another
	// Authentication Method (OAUTH2-JWT vs CUSTOM-JWT).
	ErrMethod = errors.New("authentication method not accepted for this issuer")
	// ErrKeysUnavailable: the issuer's key set cannot be obtained, or the
	// last good one is older than maxStale (SPEC 5); the proxy answers 0x88.
	ErrKeysUnavailable = errors.New("signing keys unavailable")
)

// sentinels pairs each sentinel with its metric label, in a fixed order so
// Reason and Label are deterministic even for an error that (wrongly) wraps
// two of them.
var sentinels = [...]struct {
	err   error
	label string
}{
	{ErrTooLarge, "too_large"},
	{ErrMalformed, "malformed"},
	{ErrAlgorithm, "algorithm"},
	{ErrSignature, "signature"},
	{ErrUnknownKey, "unknown_key"},
	{ErrExpired, "expired"},
	{ErrNotYetValid, "not_yet_valid"},
	{ErrMissingExpiry, "missing_expiry"},
	{ErrAudience, "audience"},
	{ErrIssuer, "issuer"},
	{ErrTenant, "tenant"},
	{ErrMissingPrincipal, "missing_principal"},
	{ErrMethod, "method"},
	{ErrKeysUnavailable, "keys_unavailable"},
}

// labelOK is the verification result label of an accepted token and
// labelOther the bucket for errors outside the closed set (STYLE 38).
const (
	labelOK    = "ok"
	labelOther = "other"
)

// Reason returns the client-safe reason string for err: the text of the
// sentinel it wraps ("token expired", "audience not accepted", …), "token
// invalid" for an error outside the closed set and "" for nil. It never
// returns token bytes or a library's error text (SPEC 2: the reason string
// never echoes the token).
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.err.Error()
		}
	}
	return "token invalid"
}

// Label returns the metric label of err from a closed set: the snake_case
// name of the sentinel it wraps (too_large, malformed, algorithm, signature,
// unknown_key, expired, not_yet_valid, missing_expiry, audience, issuer,
// tenant, missing_principal, method, keys_unavailable), "ok" for nil and
// "other" for anything else.
func Label(err error) string {
	if err == nil {
		return labelOK
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.label
		}
	}
	return labelOther
}
