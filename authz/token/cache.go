package token

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// timing is the key cache schedule of SPEC 5, from Config.
type timing struct {
	refresh    time.Duration // background refresh and upper bound of max-age
	minRefresh time.Duration // smallest gap between two fetches
	maxStale   time.Duration // how long the last good set outlives failures
}

// nextRefresh honours a Cache-Control max-age within [minRefresh, refresh];
// when minRefresh exceeds refresh, minRefresh wins (SPEC 5).
func (t timing) nextRefresh(maxAge time.Duration) time.Duration {
	d := t.refresh
	if maxAge >= 0 && maxAge < d {
		d = maxAge
	}
	return max(d, t.minRefresh)
}

// retryAfter is the delay before the n-th consecutive retry of a failed
// fetch: minRefresh doubling up to refresh.
func (t timing) retryAfter(failures int) time.Duration {
	d := t.minRefresh
	for i := 1; i < failures && d < t.refresh; i++ {
		d *= 2
	}
	return max(min(d, t.refresh), t.minRefresh)
}

// keyState is one successfully fetched key set; immutable once stored.
type keyState struct {
	keys      *keySet
	fetchedAt time.Time     // Now() of the successful fetch
	maxAge    time.Duration // Cache-Control max-age, noMaxAge when absent
}

// keyCache holds one issuer's key set: fetched at Run start, refreshed in
// the background, refetched on an unknown kid at most once per minRefresh,
// with concurrent callers sharing one fetch (SPEC 5). Verify reads the
// current set with one atomic load.
type keyCache struct {
	issuer   string // configured issuer, for logs
	src      keySource
	timing   timing
	now      func() time.Time
	log      *slog.Logger
	metrics  *metrics
	onChange func() // a set was stored: wakes WaitReady

	state atomic.Pointer[keyState]
	sf    singleflight.Group

	mu          sync.Mutex
	fetching    bool      // a fetch has started and not yet stored its result
	lastAttempt time.Time // start of the last fetch, for the rate limit
	lastErr     error     // error of the last failed fetch, nil after a success
}

// usable reports whether st may verify tokens at now: it exists and its
// last successful fetch is at most maxStale old (SPEC 5).
func (c *keyCache) usable(st *keyState, now time.Time) bool {
	return st != nil && now.Sub(st.fetchedAt) <= c.timing.maxStale
}

// start joins the fetch in flight, or starts one unless a fetch started
// less than minRefresh ago; it returns nil when the rate limit refuses.
// The check and the start happen under one lock, so among any number of
// concurrent callers at most one fetch starts per minRefresh, and callers
// arriving while it runs wait for it instead of starting their own.
func (c *keyCache) start() <-chan singleflight.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fetching {
		now := c.now()
		if !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < c.timing.minRefresh {
			return nil
		}
		c.fetching = true
		c.lastAttempt = now
	}
	return c.sf.DoChan("keys", c.fetch)
}

// fetch runs one fetch for every waiter. It is detached from the callers'
// contexts: one CONNECT giving up must not fail the fetch for the others.
func (c *keyCache) fetch() (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	ks, age, skipped, err := c.src.fetch(ctx)
	for _, s := range skipped {
		c.log.Warn("token signing key skipped", "issuer", c.issuer, "kid", s.kid, "reason", s.reason)
	}
	if err != nil {
		c.metrics.fetchFailure.Inc()
		attrs := []any{"issuer", c.issuer, "source", c.src.String(), "err", err}
		if st := c.state.Load(); st != nil {
			attrs = append(attrs, "last_success", st.fetchedAt)
		}
		c.log.Warn("token key fetch failed", attrs...)
		c.finish(err)
		return nil, err
	}
	st := &keyState{keys: ks, fetchedAt: c.now(), maxAge: age}
	// Store before clearing fetching: a caller refused by the rate limit
	// right after must find the new set.
	c.state.Store(st)
	c.finish(nil)
	c.metrics.fetchSuccess.Inc()
	c.log.Debug("token keys fetched", "issuer", c.issuer, "source", c.src.String(), "keys", len(ks.all))
	if c.onChange != nil {
		c.onChange()
	}
	return st, nil
}

func (c *keyCache) finish(err error) {
	c.mu.Lock()
	c.fetching = false
	c.lastErr = err
	c.mu.Unlock()
}

// lookup returns the keys for a token header (see keySet.lookup). On a
// miss — no set, a set beyond maxStale, or no fitting key — it joins or
// starts the rate-limited refetch, waiting for it at most until ctx is done.
func (c *keyCache) lookup(ctx context.Context, kid string, kind keyKind) ([]*publicKey, error) {
	if st := c.state.Load(); c.usable(st, c.now()) {
		if keys := st.keys.lookup(kid, kind); len(keys) > 0 {
			return keys, nil
		}
	}
	if ch := c.start(); ch != nil {
		c.log.Debug("token key miss: fetching key set", "issuer", c.issuer, "kid", truncate(kid))
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("issuer %q: waiting for key set: %w: %w", c.issuer, ErrKeysUnavailable, ctx.Err())
		}
	}
	st := c.state.Load()
	if !c.usable(st, c.now()) {
		c.mu.Lock()
		lastErr := c.lastErr
		c.mu.Unlock()
		switch {
		case st == nil && lastErr != nil:
			return nil, fmt.Errorf("issuer %q: no key set (%v): %w", c.issuer, lastErr, ErrKeysUnavailable)
		case st == nil:
			return nil, fmt.Errorf("issuer %q: no key set yet: %w", c.issuer, ErrKeysUnavailable)
		default:
			return nil, fmt.Errorf("issuer %q: last good key set of %s is older than maxStale: %w",
				c.issuer, st.fetchedAt.UTC().Format(time.RFC3339), ErrKeysUnavailable)
		}
	}
	keys := st.keys.lookup(kid, kind)
	if len(keys) == 0 {
		if kid == "" {
			return nil, fmt.Errorf("issuer %q: token without kid and no single key fits: %w", c.issuer, ErrUnknownKey)
		}
		return nil, fmt.Errorf("issuer %q: kid %q: %w", c.issuer, truncate(kid), ErrUnknownKey)
	}
	return keys, nil
}

// run fetches at once, then refreshes on schedule until ctx is done: after
// a success at the Cache-Control max-age within bounds, after a failure with
// backoff from minRefresh. Every fetch goes through start, so background
// refreshes and kid-miss refetches share the rate limit and the flight.
func (c *keyCache) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		ch := c.start()
		if ch == nil {
			// A kid-miss refetch ran moments ago; come back when allowed.
			c.mu.Lock()
			wait := c.lastAttempt.Add(c.timing.minRefresh).Sub(c.now())
			c.mu.Unlock()
			timer.Reset(max(wait, time.Millisecond))
			continue
		}
		var res singleflight.Result
		select {
		case <-ctx.Done():
			return
		case res = <-ch:
		}
		if res.Err != nil {
			failures++
			timer.Reset(c.timing.retryAfter(failures))
			continue
		}
		failures = 0
		timer.Reset(c.timing.nextRefresh(res.Val.(*keyState).maxAge))
	}
}
