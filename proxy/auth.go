package proxy

import (
	"context"
	"fmt"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// Re-authentication outcomes (metric labels).
const (
	reauthSuccess        = "success"
	reauthOtherPrincipal = "other_principal"
	reauthInvalid        = "invalid_token"
	reauthBadMethod      = "bad_method"
	reauthUnavailable    = "server_unavailable"
)

// clientAuth handles an AUTH packet from the client (SPEC 2.2). The token is
// verified off the pump so traffic keeps flowing on the previous identity
// while it is checked; the AUTH never reaches the broker.
func (c *conn) clientAuth(f packetcodec.Frame) *ending {
	cp, err := packetcodec.Decode(f)
	if err != nil {
		e := clientReadEnding(err)
		return &e
	}
	a := cp.Content.(*packets.Auth)
	if c.method == "" {
		e := protocolError("AUTH on a connection that did not authenticate with a method")
		return &e
	}
	if a.ReasonCode != packets.AuthReauthenticate {
		// 0x18 continue: OAUTH2-JWT is a single-step method.
		e := protocolError(fmt.Sprintf("AUTH reason 0x%02x not expected: send 0x19 to re-authenticate", a.ReasonCode))
		return &e
	}
	var method string
	var data []byte
	if a.Properties != nil {
		method, data = a.Properties.AuthMethod, a.Properties.AuthData
	}
	if method != c.method {
		// [MQTT-4.12.1-1]: re-authentication uses the CONNECT's method.
		c.srv.metrics.reauths.WithLabelValues(reauthBadMethod).Inc()
		c.auditEvent("authentication", "reauthenticate", "", "deny", "bad authentication method", method)
		return &ending{cause: "reauth_failed", clientCode: packets.ConnackBadAuthenticationMethod, // 0x8C is valid in DISCONNECT too
			reason: fmt.Sprintf("re-authentication must use method %s", c.method)}
	}
	c.mu.Lock()
	busy := c.reauthBusy
	c.reauthBusy = true
	c.mu.Unlock()
	if busy {
		e := protocolError("re-authentication already in progress")
		return &e
	}
	c.bgAdd()
	go func() {
		defer c.bgDone()
		c.reauthenticate(method, data)
	}()
	return c.keepUpstreamAlive() // the AUTH is answered here, not forwarded
}

// reauthenticate verifies a new token and, for the same principal, replaces
// the connection's identity, grants and expiry, then re-checks the live
// subscriptions (SPEC 2.2, 3.6).
func (c *conn) reauthenticate(method string, data []byte) {
	defer func() {
		c.mu.Lock()
		c.reauthBusy = false
		c.mu.Unlock()
	}()
	s := c.srv
	id, err := c.verify(context.Background(), method, data)
	old := c.sess.Load()
	switch {
	case err != nil:
		r := authRefusal(err)
		label := reauthInvalid
		if r.code == packets.ConnackServerUnavailable {
			label = reauthUnavailable
		}
		s.metrics.reauths.WithLabelValues(label).Inc()
		c.auditEvent("authentication", "reauthenticate", "", "deny", r.reason, "")
		c.stop(ending{cause: "reauth_failed", clientCode: packets.DisconnectNotAuthorized, reason: r.reason, err: err})
		return
	case !old.id.SamePrincipal(id):
		s.metrics.reauths.WithLabelValues(reauthOtherPrincipal).Inc()
		c.auditEvent("authentication", "reauthenticate", "", "deny", "different principal", "")
		c.stop(ending{cause: "reauth_failed", clientCode: packets.DisconnectNotAuthorized,
			reason: "re-authentication with a token of a different principal"})
		return
	}
	sess := c.newSession(id)
	c.sess.Store(sess)
	if c.staleSession(sess, s.policyEpoch.Load()) {
		// A reload's re-check may have swapped in its session between
		// this compile and the Store, which replaced it: compile again
		// now, not after the AUTH below, whose write may wait.
		c.recheck()
	}
	c.armExpiry(sess.deadline)
	// Free for the next re-authentication before the client can see the
	// answer: a client may send its next AUTH as soon as it reads this one.
	c.mu.Lock()
	c.reauthBusy = false
	c.mu.Unlock()
	ack := &packets.Auth{ReasonCode: packets.AuthSuccess, Properties: &packets.Properties{AuthMethod: method}}
	if err := c.cw.WritePacket(ack); err == nil {
		_ = c.cw.Flush()
	}
	s.metrics.reauths.WithLabelValues(reauthSuccess).Inc()
	c.auditEvent("authentication", "reauthenticate", "", "allow", "", method)
	c.recheck()
}

// armExpiry (re)starts the expiry timer: at exp + skew without a successful
// re-authentication the connection ends with DISCONNECT 0xA0 (SPEC 2.3).
func (c *conn) armExpiry(deadline time.Time) {
	if deadline.IsZero() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.expiry = time.AfterFunc(time.Until(deadline), func() {
		if cur := c.sess.Load(); cur == nil || cur.deadline.After(deadline) {
			return // re-authenticated meanwhile
		}
		// The disconnect's audit line is closeEnded's, as for every end.
		c.stop(ending{cause: "token_expired", clientCode: packets.DisconnectMaximumConnectTime,
			reason: "token expired", upstreamClean: !c.srv.cfg.Session.WillOnExpiry})
	})
}

// staleSession reports whether sess's grants may not be the current
// policy's (compiled before epoch, the Server's policyEpoch read now) or
// were compiled for another client id than c's.
func (c *conn) staleSession(sess *session, epoch uint64) bool {
	return sess.epoch != epoch || sess.clientID != c.clientID
}

// recheck ends the connection with DISCONNECT 0x87 if one of its live
// subscriptions is no longer allowed by the current policy (SPEC 3.6),
// first compiling the grants again if the session's are stale: from before
// a reload (Recheck moves the epoch on first) or for another client id.
func (c *conn) recheck() {
	if c.state.Load() != stateRelay {
		return
	}
	sess := c.sess.Load()
	if p := c.srv.opts.Policy; p != nil {
		// If another re-check or a re-authentication swapped the session
		// meanwhile, perhaps with grants of an older policy, look again:
		// the last swap must carry the current policy.
		for {
			old := c.sess.Load()
			epoch := c.srv.policyEpoch.Load()
			if !c.staleSession(old, epoch) {
				sess = old // compiled after the last reload began
				break
			}
			sess = &session{id: old.id, grants: p.Grants(old.id, c.clientID), deadline: old.deadline, gen: sessionGen.Add(1), epoch: epoch, clientID: c.clientID}
			if c.sess.CompareAndSwap(old, sess) {
				break
			}
		}
	}
	if filter, denied := c.deniedSubscription(sess.grants); denied {
		c.auditEvent("denial", "subscribe", filter, "deny", "subscription revoked", "")
		c.stop(ending{cause: "subscription_revoked", clientCode: packets.DisconnectNotAuthorized,
			reason: fmt.Sprintf("subscription to '%s' no longer allowed", filter)})
	}
}
