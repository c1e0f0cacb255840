package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// reauthTimeout bounds one AUTH 0x19 → AUTH 0x00 round trip.
const reauthTimeout = 10 * time.Second

// reauthResult is the re-authentication rate through the proxy.
type reauthResult struct {
	ok      int64
	elapsed time.Duration
}

// rate is successful AUTH round trips per second.
func (r reauthResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

// runReauth opens s.connectors authenticated connections through t and has
// each re-authenticate in a loop for s.duration or until the fresh tokens
// run out (SPEC 2.2): AUTH 0x19 with a token of the same principal that the
// proxy has never seen, as a client's refreshed token is, expecting AUTH
// 0x00.
func runReauth(ctx context.Context, t *target, id *identity, s settings) (reauthResult, error) {
	var res reauthResult
	clients := make([]*paho.Client, 0, s.connectors)
	defer func() {
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Go(func() { closeClient(c) })
		}
		wg.Wait()
	}()
	for w := range s.connectors {
		c, err := dialClient(ctx, clientOptions{addr: t.addr, clientID: fmt.Sprintf("bench-reauth%d", w), token: t.token(id, w)})
		if err != nil {
			return res, fmt.Errorf("connection %d: %w", w, err)
		}
		clients = append(clients, c)
	}
	var ok atomic.Int64
	var fail firstError
	start := time.Now()
	deadline := start.Add(s.duration)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				tok, more := id.freshToken(freshReauth)
				if !more {
					return
				}
				if err := reauthOnce(ctx, c, tok); err != nil {
					fail.set(err)
					return
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	res.ok = ok.Load()
	res.elapsed = time.Since(start)
	if fail.get() != nil {
		return res, fail.get()
	}
	if res.ok == 0 {
		return res, errors.New("no re-authentication succeeded")
	}
	return res, nil
}

// reauthOnce sends AUTH 0x19 with tok and waits for AUTH 0x00.
func reauthOnce(ctx context.Context, c *paho.Client, tok string) error {
	actx, cancel := context.WithTimeout(ctx, reauthTimeout)
	defer cancel()
	resp, err := c.Authenticate(actx, &paho.Auth{
		ReasonCode: 0x19,
		Properties: &paho.AuthProperties{AuthMethod: authMethod, AuthData: []byte(tok)},
	})
	if err != nil {
		return fmt.Errorf("re-authenticate: %w", err)
	}
	if !resp.Success || resp.ReasonCode != 0x00 {
		reason := ""
		if resp.Properties != nil {
			reason = resp.Properties.ReasonString
		}
		return fmt.Errorf("re-authenticate: answered reason 0x%02x %q", resp.ReasonCode, reason)
	}
	return nil
}
