package token

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// SPEC 5: Cache-Control parsing.
func TestMaxAge(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   time.Duration
	}{
		{"absent", nil, noMaxAge},
		{"max-age", []string{"public, max-age=3600"}, time.Hour},
		{"upper case and spaces", []string{" Max-Age=60 , must-revalidate"}, time.Minute},
		{"quoted", []string{`max-age="120"`}, 2 * time.Minute},
		{"no-cache", []string{"no-cache"}, 0},
		{"no-store wins", []string{"max-age=60", "no-store"}, 0},
		{"garbage", []string{"max-age=soon"}, noMaxAge},
		{"negative", []string{"max-age=-5"}, noMaxAge},
		{"huge is capped", []string{"max-age=99999999999999"}, 365 * 24 * time.Hour},
		{"s-maxage ignored", []string{"s-maxage=5"}, noMaxAge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := maxAge(tt.values); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// SPEC 5: max-age is honoured within [minRefreshInterval, refreshInterval].
func TestNextRefresh(t *testing.T) {
	tm := timing{refresh: 15 * time.Minute, minRefresh: 30 * time.Second}
	tests := []struct {
		name   string
		timing timing
		maxAge time.Duration
		want   time.Duration
	}{
		{"no max-age", tm, noMaxAge, 15 * time.Minute},
		{"within bounds", tm, 5 * time.Minute, 5 * time.Minute},
		{"below min", tm, 0, 30 * time.Second},
		{"above refresh", tm, 24 * time.Hour, 15 * time.Minute},
		{"min above refresh wins", timing{refresh: time.Minute, minRefresh: time.Hour}, noMaxAge, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.timing.nextRefresh(tt.maxAge); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	tm := timing{refresh: 4 * time.Minute, minRefresh: 30 * time.Second}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute}
	for i, w := range want {
		if got := tm.retryAfter(i + 1); got != w {
			t.Errorf("failure %d: got %v, want %v", i+1, got, w)
		}
	}
}

// SPEC 2.1: keys that cannot verify an accepted algorithm are skipped; a
// set with none is an error.
func TestParseKeySet(t *testing.T) {
	const rsa1024 = `{"kty":"RSA","kid":"short","e":"AQAB","n":"` +
		`wNBC8ZO6ZFNuZGG1iMcCMHdw6twHbGrfEqsHlZGPXQvD5cKHDWkZvr2O5SbTS6kLEgAM3mBc4rWvsHZuZ6Q9C9QzZOy8CwqaQqbLOCyVmGKVIr7sACL6JW1Y3hG3sSm_BtUG6oxBLcAaOY4rXNjk8nJVJbwNwk6ovVWdsZ1-e4E"}`
	tests := []struct {
		name        string
		doc         string
		wantKids    []string
		wantSkipped []string
		wantErr     bool
	}{
		{name: "oct only", doc: `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`, wantSkipped: []string{"h"}, wantErr: true},
		{name: "encryption key and short RSA skipped", doc: `{"keys":[` + rsa1024 + `,{"kty":"EC","kid":"enc","use":"enc","crv":"P-256",` +
			`"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},` +
			`{"kty":"EC","kid":"sig","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`,
			wantKids: []string{"sig"}, wantSkipped: []string{"short", "enc"}},
		{name: "alg not fitting the key", doc: `{"keys":[{"kty":"EC","kid":"x","alg":"RS256","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`,
			wantSkipped: []string{"x"}, wantErr: true},
		{name: "key_ops without verify", doc: `{"keys":[{"kty":"EC","kid":"x","key_ops":["sign"],"crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`,
			wantSkipped: []string{"x"}, wantErr: true},
		{name: "not JSON", doc: `<html>`, wantErr: true},
		{name: "empty set", doc: `{"keys":[]}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, skipped, err := parseKeySet([]byte(tt.doc))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			var gotSkipped []string
			for _, s := range skipped {
				gotSkipped = append(gotSkipped, s.kid)
			}
			if strings.Join(gotSkipped, ",") != strings.Join(tt.wantSkipped, ",") {
				t.Errorf("got skipped %q, want %q", gotSkipped, tt.wantSkipped)
			}
			if ks == nil {
				return
			}
			var kids []string
			for _, k := range ks.all {
				kids = append(kids, k.kid)
			}
			if strings.Join(kids, ",") != strings.Join(tt.wantKids, ",") {
				t.Errorf("got kids %q, want %q", kids, tt.wantKids)
			}
		})
	}
}

// The default client refuses an https → http redirect.
func TestNoDowngradeRedirect(t *testing.T) {
	c := newHTTPClient()
	req, _ := http.NewRequest(http.MethodGet, "http://idp.example/keys", nil)
	via, _ := http.NewRequest(http.MethodGet, "https://idp.example/keys", nil)
	if err := c.CheckRedirect(req, []*http.Request{via}); err == nil {
		t.Errorf("got nil, want the downgrade refused")
	}
}

// FuzzParse: parsing arbitrary Authentication Data never panics and every
// refusal wraps a sentinel.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"", "a.b.c", "a.b.c.d.e", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
		"eyJhbGciOiJub25lIn0.eyJleHAiOjF9.",
		"eyJhbGciOiJSUzI1NiIsImNyaXQiOlsieCJdfQ.e30.c2ln",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCompact(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrAlgorithm) {
				t.Fatalf("parseCompact: %v wraps no expected sentinel", err)
			}
			return
		}
		if _, err := decodeClaims(c.payload); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("decodeClaims: %v", err)
		}
	})
}

// The verified-token cache never holds more than verifiedCacheSize entries,
// whatever number of distinct tokens arrive.
func TestVerifiedCacheBounded(t *testing.T) {
	now := time.Now()
	kc := &keyCache{}
	set := &keyState{fetchedAt: now}
	kc.state.Store(set)
	var c verifiedCache
	for i := range 3 * verifiedCacheSize {
		key := verifiedKey("OAUTH2-JWT", []byte(strings.Repeat("x", i)))
		c.store(key, verifiedEntry{id: &authz.Identity{ExpiresAt: now.Add(time.Hour)}, keys: kc, set: set}, now)
		if n := c.len(); n > verifiedCacheSize {
			t.Fatalf("after %d stores: %d entries, limit %d", i+1, n, verifiedCacheSize)
		}
	}
}
