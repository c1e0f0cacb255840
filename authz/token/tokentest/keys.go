package tokentest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// Key is a signing key: its private half signs, its public half is what an
// Issuer publishes. Its kid is the RFC 7638 SHA-256 thumbprint, which is also
// the kid the verifier gives a PEM key.
type Key struct {
	priv crypto.Signer
	kid  string
	alg  jwa.SignatureAlgorithm
}

// KeyID returns the key's kid.
func (k *Key) KeyID() string { return k.kid }

// Algorithm returns the algorithm the key signs with by default.
func (k *Key) Algorithm() jwa.SignatureAlgorithm { return k.alg }

// Public returns the public key (*rsa.PublicKey, *ecdsa.PublicKey or
// ed25519.PublicKey).
func (k *Key) Public() crypto.PublicKey { return k.priv.Public() }

// PublicJWK returns the public key as a JWK with kid and use "sig" and no
// alg, as Entra publishes them.
func (k *Key) PublicJWK() (jwk.Key, error) {
	pub, err := jwk.FromRaw(k.priv.Public())
	if err != nil {
		return nil, fmt.Errorf("public JWK: %w", err)
	}
	if err := pub.Set(jwk.KeyIDKey, k.kid); err != nil {
		return nil, err
	}
	if err := pub.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return nil, err
	}
	return pub, nil
}

// PublicPEM returns the public key as a PKIX "PUBLIC KEY" PEM block.
func (k *Key) PublicPEM() ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// CertificatePEM returns a self-signed certificate of the key, valid for a
// day, as a "CERTIFICATE" PEM block.
func (k *Key) CertificatePEM() ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tokentest signing key"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.priv.Public(), k.priv)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// GenerateKey returns a new key for alg: RSA-2048 for RS* and PS*, P-256,
// P-384 or P-521 for ES256/384/512, Ed25519 for EdDSA. HMAC and none have
// no key here; see the Mint… attack helpers.
func GenerateKey(alg jwa.SignatureAlgorithm) (*Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jwa.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwa.ES384:
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jwa.ES512:
		priv, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case jwa.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("tokentest: no key type for alg %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("tokentest: generate %s key: %w", alg, err)
	}
	k := &Key{priv: priv, alg: alg}
	pub, err := jwk.FromRaw(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("tokentest: %w", err)
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("tokentest: thumbprint: %w", err)
	}
	k.kid = base64.RawURLEncoding.EncodeToString(tp)
	return k, nil
}

// TB is the part of testing.TB that NewKey needs, so this package does not
// import testing (the dev subcommand uses it).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// NewKey is GenerateKey for tests: it fails t instead of returning an
// error. The key is not published by any Issuer; sign with it through
// WithKey to get a token whose kid the IdP does not know.
func NewKey(t TB, alg jwa.SignatureAlgorithm) *Key {
	t.Helper()
	k, err := GenerateKey(alg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return k
}

// fits reports whether k can sign alg.
func (k *Key) fits(alg jwa.SignatureAlgorithm) bool {
	switch pub := k.priv.Public().(type) {
	case *rsa.PublicKey:
		switch alg {
		case jwa.RS256, jwa.RS384, jwa.RS512, jwa.PS256, jwa.PS384, jwa.PS512:
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case jwa.ES256:
			return pub.Curve == elliptic.P256()
		case jwa.ES384:
			return pub.Curve == elliptic.P384()
		case jwa.ES512:
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == jwa.EdDSA
	}
	return false
}

// jwksDocument renders keys as a JWKS.
func jwksDocument(keys []*Key) ([]byte, error) {
	set := jwk.NewSet()
	for _, k := range keys {
		pub, err := k.PublicJWK()
		if err != nil {
			return nil, err
		}
		if err := set.AddKey(pub); err != nil {
			return nil, err
		}
	}
	return json.Marshal(set)
}
