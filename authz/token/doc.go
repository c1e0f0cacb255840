// Package token turns MQTT enhanced-authentication data — an Authentication
// Method string and the Authentication Data bytes — into an authz.Identity,
// or into an error wrapping one sentinel of a closed set (SPEC 2.1, 5). It
// knows nothing about MQTT: reason codes, the OAUTH2-JWT method check of
// CONNECT and AUTH, and the expiry timer belong to the proxy (STYLE §3).
//
// Invariants:
//
//   - Data larger than Options.MaxTokenSize is refused before any parsing.
//   - Only compact JWS (three base64url segments) signed with RS256/384/512,
//     PS256/384/512, ES256/384/512 or EdDSA is accepted. none and HMAC have no
//     code path at all, so no key set content can make them verify; the alg
//     must fit the key's type (and the JWK's alg, when it has one).
//   - Keys come only from configured sources: an Entra tenant's
//     {authority}/{tid}/discovery/v2.0/keys, an issuer's OIDC discovery
//     document, a JWKS URL, or a JWKS/PEM file. jku, x5u, x5c, jwk headers
//     and the token's iss are never fetched or used as keys; iss only selects
//     among configured issuers (exact match).
//   - Key lookup is by kid. A token without kid is verified only when the
//     issuer's set has exactly one key of the type its alg needs; otherwise
//     it gets ErrUnknownKey. A PEM key's kid is its RFC 7638 thumbprint.
//   - A key miss (unknown kid, no set, set beyond maxStale) triggers at most
//     one fetch per issuer per minRefreshInterval, shared by every concurrent
//     caller; background refreshes go through the same gate.
//   - On fetch errors the last good key set is used until maxStale after its
//     last successful fetch; then, as with no set at all, the issuer's tokens
//     get ErrKeysUnavailable (the proxy answers 0x88).
//   - exp is required; exp, nbf and iat are checked with clock skew; aud must
//     contain a configured audience; an Entra token's tid, when present, must
//     equal its issuer's tenant.
//   - Raw tokens, signatures and claims sets are never logged, and the
//     client-visible Reason of an error is a fixed string.
//
// Identity mapping: the authentication name is oid for Entra and the
// configured principal claim (default sub, a non-empty string) otherwise.
// Identity.Issuer of an Entra token is the tenant's v2 issuer whatever the
// token version, so v1 and v2 tokens of one oid are the same principal.
// Groups come from groups, app roles from roles (string elements only), and
// GroupsOverage is set when _claim_names has a groups member. Attributes are
// every other claim whose value is a string, an integer within int32 (in
// decimal) or an array of strings only; excluded are iss sub aud exp nbf iat
// jti oid tid groups roles _claim_names _claim_sources. Claims such as
// is_superuser or acl grant nothing: they are attributes like any other.
//
// The package is named for what it handles, not "authn": the design card
// fixes the top level, and authentication and authorization share one
// decision tree and one boundary type (STYLE §3).
package token
