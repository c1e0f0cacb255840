// Package tokentest is a loopback identity provider for tests and the dev
// subcommand: an httptest server on 127.0.0.1 serving OIDC discovery, a JWKS
// and the Entra ID layout ({tid}/v2.0/.well-known/openid-configuration,
// {tid}/discovery/v2.0/keys), plus token minting — realistic Entra v1/v2
// access tokens, arbitrary claims with chosen alg, kid and headers, and the
// attack shapes a verifier must refuse (alg none, HS256 keyed with the RSA
// public key, compact JWE, malformed data).
//
// It never needs a *testing.T (NewKey takes the small TB interface), so
// non-test code can use it. Keys are generated per Issuer; nothing is shared
// between instances and there is no package-level state.
package tokentest
