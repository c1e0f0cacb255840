package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// maxNumericDate bounds exp, nbf and iat to year 9999 so that converting a
// hostile 1e300 cannot overflow time arithmetic.
const maxNumericDate = 253402300799

// claimSet is a decoded JWT claims set. Numbers stay json.Number so that the
// int32 test of attributes is exact and large values are never rounded.
type claimSet map[string]any

// decodeClaims parses the payload: exactly one JSON object. Member names
// are exact (a map, not a struct) and the last duplicate wins.
func decodeClaims(payload []byte) (claimSet, error) {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("claims are not a JSON object: %w", ErrMalformed)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("data after the claims object: %w", ErrMalformed)
	}
	return m, nil
}

// numericDate reads a NumericDate claim (RFC 7519 2: seconds, possibly
// fractional). ok is false when the claim is absent.
func (c claimSet) numericDate(name string) (t time.Time, ok bool, err error) {
	v, present := c[name]
	if !present {
		return time.Time{}, false, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, true, fmt.Errorf("claim %s is not a number: %w", name, ErrMalformed)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, true, fmt.Errorf("claim %s is out of range: %w", name, ErrMalformed)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// checkTimes enforces SPEC 2.1: exp required, exp/nbf/iat with clock skew.
// A token is expired from exp + skew on; nbf and iat may be at most skew
// ahead of now (an iat in the future means a wrong clock or a forged token).
func (c claimSet) checkTimes(now time.Time, skew time.Duration) (exp time.Time, err error) {
	exp, ok, err := c.numericDate("exp")
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		return time.Time{}, ErrMissingExpiry
	}
	if !now.Before(exp.Add(skew)) {
		return time.Time{}, fmt.Errorf("exp %s: %w", exp.UTC().Format(time.RFC3339), ErrExpired)
	}
	latest := now.Add(skew)
	for _, name := range [...]string{"nbf", "iat"} {
		t, ok, err := c.numericDate(name)
		if err != nil {
			return time.Time{}, err
		}
		if ok && t.After(latest) {
			return time.Time{}, fmt.Errorf("%s %s: %w", name, t.UTC().Format(time.RFC3339), ErrNotYetValid)
		}
	}
	return exp, nil
}

// notBefore is the latest of nbf and iat (zero without either), once
// checkTimes has accepted them.
func (c claimSet) notBefore() time.Time {
	var latest time.Time
	for _, name := range [...]string{"nbf", "iat"} {
		if t, ok, err := c.numericDate(name); ok && err == nil && t.After(latest) {
			latest = t
		}
	}
	return latest
}

// checkAudience enforces SPEC 2.1: aud, a string or an array of strings,
// must contain one accepted audience. A missing or empty aud accepts nothing.
func (c claimSet) checkAudience(accepted []string) error {
	match := func(a string) bool {
		for _, want := range accepted {
			if a == want {
				return true
			}
		}
		return false
	}
	switch aud := c["aud"].(type) {
	case string:
		if match(aud) {
			return nil
		}
		return fmt.Errorf("aud %q: %w", truncate(aud), ErrAudience)
	case []any:
		for _, v := range aud {
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("aud array holds a %T: %w", v, ErrMalformed)
			}
			if match(s) {
				return nil
			}
		}
		return fmt.Errorf("none of %d aud values: %w", len(aud), ErrAudience)
	case nil:
		return fmt.Errorf("no aud: %w", ErrAudience)
	default:
		return fmt.Errorf("aud is a %T: %w", aud, ErrMalformed)
	}
}

// excludedClaim lists the claims that never become client attributes: the
// registered ones SPEC 2.1 names (iss sub aud exp nbf iat jti) and those this
// package already turned into Identity fields or that only describe other
// claims (oid tid groups roles _claim_names _claim_sources).
func excludedClaim(name string) bool {
	switch name {
	case "iss", "sub", "aud", "exp", "nbf", "iat", "jti",
		"oid", "tid", "groups", "roles", "_claim_names", "_claim_sources":
		return true
	}
	return false
}

// fillIdentity copies groups, overage, app roles and attributes into id
// (SPEC 2.1). Claims of other shapes are ignored: they grant nothing, and a
// claim such as is_superuser or acl is just an attribute like any other.
func (c claimSet) fillIdentity(id *authz.Identity) {
	id.Groups = stringArray(c["groups"])
	id.AppRoles = stringArray(c["roles"])
	if names, ok := c["_claim_names"].(map[string]any); ok {
		_, id.GroupsOverage = names["groups"]
	}
	for name, v := range c {
		if excludedClaim(name) {
			continue
		}
		if vals, ok := attributeValues(v); ok {
			if id.Attributes == nil {
				id.Attributes = make(map[string][]string)
			}
			id.Attributes[name] = vals
		}
	}
}

// stringArray returns the string elements of an array claim, in order;
// other elements are skipped. A single string is a one-element list, as
// some IdPs emit a one-group groups claim that way.
func stringArray(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// attributeValues converts a claim value into attribute values: a string, an
// integer that fits in int32 (in decimal, as written), or an array whose
// elements are all strings (possibly empty). Anything else — floats, larger
// integers, booleans, objects, mixed arrays, null — is not an attribute.
func attributeValues(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case json.Number:
		i, err := strconv.ParseInt(string(v), 10, 32)
		if err != nil {
			return nil, false
		}
		return []string{strconv.FormatInt(i, 10)}, true
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out[i] = s
		}
		return out, true
	}
	return nil, false
}
