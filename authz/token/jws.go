package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
)

const cryptoSHA256 = crypto.SHA256

// b64 is the encoding of every JWS segment: base64url without padding
// (RFC 7515 2), strict so that non-canonical encodings are refused.
var b64 = base64.RawURLEncoding.Strict()

// algorithm is one accepted JWS signature algorithm (SPEC 2.1). Only
// asymmetric algorithms exist here: none and HS* have no entry, so no code
// path can ever verify them, whatever a key set holds.
type algorithm struct {
	name string
	kind keyKind
	hash crypto.Hash
	pss  bool
}

// lookupAlgorithm returns the accepted algorithm named name (case-sensitive,
// RFC 7518 3.1).
func lookupAlgorithm(name string) (algorithm, bool) {
	switch name {
	case "RS256":
		return algorithm{name, kindRSA, crypto.SHA256, false}, true
	case "RS384":
		return algorithm{name, kindRSA, crypto.SHA384, false}, true
	case "RS512":
		return algorithm{name, kindRSA, crypto.SHA512, false}, true
	case "PS256":
		return algorithm{name, kindRSA, crypto.SHA256, true}, true
	case "PS384":
		return algorithm{name, kindRSA, crypto.SHA384, true}, true
	case "PS512":
		return algorithm{name, kindRSA, crypto.SHA512, true}, true
	case "ES256":
		return algorithm{name, kindP256, crypto.SHA256, false}, true
	case "ES384":
		return algorithm{name, kindP384, crypto.SHA384, false}, true
	case "ES512":
		return algorithm{name, kindP521, crypto.SHA512, false}, true
	case "EdDSA":
		return algorithm{name, kindEd25519, 0, false}, true
	}
	return algorithm{}, false
}

// verify checks sig over input with k, whose kind the caller has matched to
// a. It uses the standard library directly: the key is already parsed, and
// no allocation beyond the digest and the big integers is needed.
func (a algorithm) verify(k *publicKey, input, sig []byte) bool {
	if a.kind == kindEd25519 {
		return ed25519.Verify(k.ed, input, sig)
	}
	var sum [sha512.Size]byte
	var digest []byte
	switch a.hash {
	case crypto.SHA256:
		s := sha256.Sum256(input)
		digest = append(sum[:0], s[:]...)
	case crypto.SHA384:
		s := sha512.Sum384(input)
		digest = append(sum[:0], s[:]...)
	case crypto.SHA512:
		s := sha512.Sum512(input)
		digest = append(sum[:0], s[:]...)
	default:
		return false
	}
	switch {
	case a.kind == kindRSA && a.pss:
		// RFC 7518 3.5: the salt is as long as the hash.
		return rsa.VerifyPSS(k.rsa, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
	case a.kind == kindRSA:
		return rsa.VerifyPKCS1v15(k.rsa, a.hash, digest, sig) == nil
	default:
		// RFC 7518 3.4: R and S as fixed-length big-endian octets, not ASN.1.
		n := (k.ec.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return false
		}
		r := new(big.Int).SetBytes(sig[:n])
		s := new(big.Int).SetBytes(sig[n:])
		return ecdsa.Verify(k.ec, digest, r, s)
	}
}

// compact is a parsed compact JWS. It holds slices of the Authentication
// Data, so it logs as a placeholder (STYLE 13).
type compact struct {
	header  header
	alg     algorithm
	input   []byte // ASCII(header "." payload): the signing input
	payload []byte // decoded claims JSON
	sig     []byte // decoded signature
}

// LogValue keeps token bytes out of logs should a compact ever be logged.
func (*compact) LogValue() slog.Value { return slog.StringValue("[REDACTED token]") }

// header is the JOSE header fields the verifier looks at. jku, x5u, x5c and
// jwk are deliberately absent: keys come only from configured sources, never
// from URLs or keys named by the token (SPEC 2.1).
type header struct {
	alg     string
	kid     string
	hasCrit bool
	hasEnc  bool
	b64     *bool
}

// parseCompact splits and decodes a compact JWS and checks its header. It
// refuses anything that is not exactly three base64url segments (a compact
// JWE has five) and, before decoding the claims, algorithms outside SPEC
// 2.1: none, HMAC and unknown names.
func parseCompact(data []byte) (*compact, error) {
	// Only the base64url alphabet and dots: Go's base64 decoder silently skips
	// CR and LF, and a token with whitespace is not a compact JWS anyway.
	dots := 0
	for _, c := range data {
		switch {
		case c == '.':
			dots++
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return nil, fmt.Errorf("byte outside the base64url alphabet: %w", ErrMalformed)
		}
	}
	switch {
	case dots == 4:
		return nil, fmt.Errorf("compact JWE (5 segments) instead of a JWS: %w", ErrMalformed)
	case dots != 2:
		return nil, fmt.Errorf("%d segments, want 3: %w", dots+1, ErrMalformed)
	}
	first := bytes.IndexByte(data, '.')
	second := first + 1 + bytes.IndexByte(data[first+1:], '.')
	hb, pb, sb := data[:first], data[first+1:second], data[second+1:]
	if len(hb) == 0 || len(pb) == 0 {
		return nil, fmt.Errorf("empty header or payload segment: %w", ErrMalformed)
	}
	// An empty signature segment is left to the algorithm check (an
	// unsecured JWS says alg none) and then to signature verification.

	raw, err := b64.AppendDecode(nil, hb)
	if err != nil {
		return nil, fmt.Errorf("header is not base64url: %w", ErrMalformed)
	}
	h, err := parseHeader(raw)
	if err != nil {
		return nil, err
	}
	alg, ok := lookupAlgorithm(h.alg)
	if !ok {
		return nil, fmt.Errorf("alg %q: %w", truncate(h.alg), ErrAlgorithm)
	}
	t := &compact{header: h, alg: alg, input: data[:second]}
	if t.payload, err = b64.AppendDecode(nil, pb); err != nil {
		return nil, fmt.Errorf("payload is not base64url: %w", ErrMalformed)
	}
	if t.sig, err = b64.AppendDecode(nil, sb); err != nil {
		return nil, fmt.Errorf("signature is not base64url: %w", ErrMalformed)
	}
	return t, nil
}

// parseHeader decodes the JOSE header. Member names are matched exactly
// (encoding/json struct decoding would match "ALG" too) and, for duplicates,
// the lexically last wins, as RFC 7515 4 allows.
func parseHeader(raw []byte) (header, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return header{}, fmt.Errorf("header is not a JSON object: %w", ErrMalformed)
	}
	var h header
	str := func(name string, dst *string) error {
		v, ok := m[name]
		if !ok {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("header %s is not a string: %w", name, ErrMalformed)
		}
		return nil
	}
	if err := str("alg", &h.alg); err != nil {
		return header{}, err
	}
	if err := str("kid", &h.kid); err != nil {
		return header{}, err
	}
	_, h.hasCrit = m["crit"]
	_, h.hasEnc = m["enc"]
	if v, ok := m["b64"]; ok {
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return header{}, fmt.Errorf("header b64 is not a boolean: %w", ErrMalformed)
		}
		h.b64 = &b
	}
	switch {
	case h.alg == "":
		return header{}, fmt.Errorf("header has no alg: %w", ErrMalformed)
	case h.hasEnc:
		return header{}, fmt.Errorf("header has enc (a JWE header): %w", ErrMalformed)
	case h.hasCrit:
		// RFC 7515 4.1.11: extensions listed in crit must be understood; this
		// verifier understands none.
		return header{}, fmt.Errorf("header has crit: %w", ErrMalformed)
	case h.b64 != nil && !*h.b64:
		return header{}, fmt.Errorf("unencoded payload (b64 false): %w", ErrMalformed)
	}
	return h, nil
}

// truncate bounds token-supplied strings quoted in error messages, which
// the proxy logs; they are never sent to the client (Reason is).
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
