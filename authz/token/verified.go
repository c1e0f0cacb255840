package token

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
)

// verifiedCacheSize bounds the verified-token cache: at most this many
// entries of about one Identity each (a few hundred bytes to a few KiB).
const verifiedCacheSize = 4096

// verifiedCache remembers tokens that passed every check of verify, so that
// a client reconnecting with the token it already used (a reconnect storm
// after a broker restart, a device's retry loop) or re-authenticating with
// it does not pay for the signature check and the claims again: the
// signature is most of a CONNECT's CPU (issue 5).
//
// An entry is keyed by SHA-256 over the method and the whole token, so only
// the very same bytes hit. It is used only while the issuer's key set is the
// one the token was verified with (any refetch, rotation or expiry of the
// set invalidates it) and while the token's times still hold at the current
// clock; otherwise the token is verified from scratch, which reports the
// precise error.
type verifiedCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]verifiedEntry
}

type verifiedEntry struct {
	id        *authz.Identity // never handed out: lookups return a copy
	keys      *keyCache       // the issuer's key cache ...
	set       *keyState       // ... and the set that verified the token
	notBefore time.Time       // latest of nbf and iat; zero without either
}

// verifiedKey hashes the method and the token.
func verifiedKey(method string, data []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write(data)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// lookup returns a copy of the identity verified for key if the entry is
// still good at now with skew, or nil.
func (c *verifiedCache) lookup(key [sha256.Size]byte, now time.Time, skew time.Duration) *authz.Identity {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok {
		return nil
	}
	if e.keys.state.Load() != e.set || !e.keys.usable(e.set, now) ||
		!now.Before(e.id.ExpiresAt.Add(skew)) || e.notBefore.After(now.Add(skew)) {
		c.mu.Lock()
		delete(c.m, key)
		c.mu.Unlock()
		return nil
	}
	id := *e.id
	return &id
}

// store remembers a verified token. When the cache is full, expired and
// outdated entries go first, then arbitrary ones, so memory stays bounded
// whatever clients send.
func (c *verifiedCache) store(key [sha256.Size]byte, e verifiedEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[sha256.Size]byte]verifiedEntry)
	}
	if len(c.m) >= verifiedCacheSize {
		for k, old := range c.m {
			if !now.Before(old.id.ExpiresAt) || old.keys.state.Load() != old.set {
				delete(c.m, k)
			}
		}
		// Map iteration order is unspecified; dropping an eighth keeps
		// eviction amortised O(1) per store.
		for k := range c.m {
			if len(c.m) < verifiedCacheSize-verifiedCacheSize/8 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = e
}

// len is the number of entries (tests).
func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
