package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

// minRSABits refuses RSA keys too short to be trusted (NIST SP 800-131A);
// Entra and every mainstream IdP publish 2048-bit or longer keys.
const minRSABits = 2048

// keyKind is the type of a public key, as far as the algorithms of SPEC 2.1
// care: an alg fits exactly one kind (ES256 needs P-256, RFC 7518 3.4).
type keyKind uint8

const (
	kindRSA keyKind = iota + 1
	kindP256
	kindP384
	kindP521
	kindEd25519
)

// publicKey is one verification key, parsed once when its key set is fetched
// so that Verify never touches JWK JSON (the hot path of CONNECT).
type publicKey struct {
	kid  string
	alg  string // the JWK's alg, "" when the JWK does not restrict it
	kind keyKind
	rsa  *rsa.PublicKey
	ec   *ecdsa.PublicKey
	ed   ed25519.PublicKey
}

// keySet is an immutable set of verification keys of one issuer.
type keySet struct {
	byKid map[string][]*publicKey
	all   []*publicKey
}

// skippedKey says why a published key is not used; fetch logs them.
type skippedKey struct {
	kid    string
	reason string
}

// lookup returns the candidate keys for a token header: by kid, or — for a
// token without kid — the only key of the set whose kind fits alg. With no
// kid and zero or several fitting keys nothing is returned: guessing among
// keys would let a token pick its verification key (SPEC 2.1).
func (s *keySet) lookup(kid string, kind keyKind) []*publicKey {
	if s == nil {
		return nil
	}
	if kid != "" {
		return s.byKid[kid]
	}
	var only *publicKey
	for _, k := range s.all {
		if k.kind != kind {
			continue
		}
		if only != nil {
			return nil
		}
		only = k
	}
	if only == nil {
		return nil
	}
	return []*publicKey{only}
}

// parseKeySet parses a JWKS document, a single JWK, or PEM public keys and
// certificates (what a jwksFile may hold). Keys that cannot verify a SPEC 2.1
// signature (symmetric, encryption-only, short RSA, unknown curves) are
// skipped and reported; a set with no usable key at all is an error, because
// keeping it would turn an IdP mistake into "signing key not found" for
// everyone instead of keeping the last good set.
func parseKeySet(data []byte) (*keySet, []skippedKey, error) {
	trimmed := bytes.TrimSpace(data)
	pem := bytes.HasPrefix(trimmed, []byte("-----BEGIN"))
	set, err := jwk.Parse(trimmed, jwk.WithPEM(pem), jwk.WithIgnoreParseError(!pem))
	if err != nil {
		return nil, nil, fmt.Errorf("parse key set: %w", err)
	}
	ks := &keySet{byKid: make(map[string][]*publicKey, set.Len())}
	var skipped []skippedKey
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		pk, reason := convertKey(k, pem)
		if pk == nil {
			skipped = append(skipped, skippedKey{kid: k.KeyID(), reason: reason})
			continue
		}
		ks.all = append(ks.all, pk)
		if pk.kid != "" {
			ks.byKid[pk.kid] = append(ks.byKid[pk.kid], pk)
		}
	}
	if len(ks.all) == 0 {
		return nil, skipped, errors.New("parse key set: no usable signature verification key")
	}
	return ks, skipped, nil
}

// convertKey turns a JWK into a publicKey, or returns why it is not usable.
// Keys from PEM get their RFC 7638 thumbprint as kid.
func convertKey(k jwk.Key, fromPEM bool) (*publicKey, string) {
	if use := k.KeyUsage(); use != "" && use != string(jwk.ForSignature) {
		return nil, "use is not sig"
	}
	if ops := k.KeyOps(); len(ops) > 0 && !slices.Contains(ops, jwk.KeyOpVerify) {
		return nil, "key_ops lacks verify"
	}
	var raw any
	if err := k.Raw(&raw); err != nil {
		return nil, "unreadable key material"
	}
	pk := &publicKey{kid: k.KeyID(), alg: k.Algorithm().String()}
	switch key := raw.(type) {
	case *rsa.PrivateKey:
		pk.kind, pk.rsa = kindRSA, &key.PublicKey
	case *rsa.PublicKey:
		pk.kind, pk.rsa = kindRSA, key
	case *ecdsa.PrivateKey:
		pk.ec = &key.PublicKey
	case *ecdsa.PublicKey:
		pk.ec = key
	case ed25519.PrivateKey:
		pk.kind, pk.ed = kindEd25519, key.Public().(ed25519.PublicKey)
	case ed25519.PublicKey:
		pk.kind, pk.ed = kindEd25519, key
	default:
		// Symmetric (oct) keys in particular: HMAC is never accepted (SPEC 2.1).
		return nil, fmt.Sprintf("key type %s not accepted", k.KeyType())
	}
	if pk.ec != nil {
		switch pk.ec.Curve {
		case elliptic.P256():
			pk.kind = kindP256
		case elliptic.P384():
			pk.kind = kindP384
		case elliptic.P521():
			pk.kind = kindP521
		default:
			return nil, "elliptic curve not accepted"
		}
	}
	if pk.rsa != nil && pk.rsa.N.BitLen() < minRSABits {
		return nil, fmt.Sprintf("RSA key of %d bits is shorter than %d", pk.rsa.N.BitLen(), minRSABits)
	}
	if pk.alg != "" {
		if a, ok := lookupAlgorithm(pk.alg); !ok || a.kind != pk.kind {
			return nil, fmt.Sprintf("alg %q does not fit the key", pk.alg)
		}
	}
	if fromPEM && pk.kid == "" {
		tp, err := k.Thumbprint(cryptoSHA256)
		if err != nil {
			return nil, "no thumbprint"
		}
		pk.kid = base64.RawURLEncoding.EncodeToString(tp)
	}
	return pk, ""
}
