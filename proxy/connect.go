package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// Connect outcome labels (bounded; metric label values).
const (
	resultSuccess           = "success"
	resultNoConnect         = "no_connect"
	resultProtocolError     = "protocol_error"
	resultTooLarge          = "packet_too_large"
	resultUnsupportedV3     = "unsupported_protocol_version"
	resultBadMethod         = "bad_authentication_method"
	resultNotAuthorized     = "not_authorized"
	resultServerUnavailable = "server_unavailable"
	resultServerBusy        = "server_busy"
	resultInvalidClientID   = "invalid_client_id"
	resultWillDenied        = "will_denied"
	resultUpstreamRefused   = "upstream_refused"
	resultStopped           = "stopped" // shutdown or policy re-check before the CONNACK
)

// refusal is a CONNACK the proxy answers itself before closing.
type refusal struct {
	code   byte
	reason string
	label  string
	err    error
}

// handshake runs the states before relaying (SPEC 2, 4): read CONNECT within
// the connect timeout, authenticate, map the client id, authorize the Will,
// and only then dial the upstream and relay its CONNACK. It reports whether
// the connection goes on to relay; on false everything is answered and the
// upstream (if dialled) closed. Connections that live on an event loop
// from accept run the same steps as loop events (native_linux.go).
func (c *conn) handshake(ctx context.Context) bool {
	s := c.srv
	_ = c.nc.SetReadDeadline(time.Now().Add(s.cfg.Limits.ConnectTimeout))
	f, err := c.cr.ReadFrame()
	cp := c.firstPacket(f, err)
	if cp == nil {
		return false
	}
	method, data, id, r := c.authStart(cp)
	if r == nil && id == nil {
		if id, err = c.verify(ctx, method, data); err != nil {
			ar := authRefusal(err)
			r = &ar
		}
	}
	if r == nil {
		r = c.admit(cp, id)
	}
	if r != nil {
		c.refuse(*r)
		return false
	}
	if !c.connectUpstream(ctx, cp, id) {
		return false
	}
	c.mu.Lock()
	c.state.Store(stateRelay) // under mu: see stop
	c.mu.Unlock()
	_ = c.nc.SetReadDeadline(time.Time{})
	c.established()
	return true
}

// firstPacket checks that the first packet is a v5 CONNECT and returns it
// decoded, or answers as SPEC 2 says and returns nil.
func (c *conn) firstPacket(f packetcodec.Frame, err error) *packetcodec.Connect {
	s := c.srv
	if err != nil && connectTooLarge(c, err) {
		return nil
	}
	if err != nil || f.Type != packets.CONNECT {
		// SPEC 2: first packet not CONNECT, or none in time → close without reply.
		s.metrics.connects.WithLabelValues(resultNoConnect).Inc()
		c.debug("no connect", "err", err)
		return nil
	}
	s.metrics.packet(dirFromClient, packets.CONNECT)
	cp, err := packetcodec.DecodeConnect(f)
	if errors.Is(err, packetcodec.ErrProtocolV3) {
		// SPEC 2: v3 CONNACK return code 0x01 (unacceptable protocol version).
		s.metrics.connects.WithLabelValues(resultUnsupportedV3).Inc()
		// Four bytes, the first the socket gets: they never wait, even
		// on a socket the loop owns (made to wait, with a deadline).
		releaseForFinalWrite(c.nc)
		_ = c.nc.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
		_ = c.cw.WriteAndFlush(packetcodec.V3ConnackUnacceptableProtocol)
		return nil
	}
	if err != nil {
		var pe *packetcodec.Error
		r := refusal{code: packets.ConnackMalformedPacket, reason: "malformed CONNECT", label: resultProtocolError, err: err}
		if errors.As(err, &pe) {
			r.code, r.reason = pe.Code, pe.Reason
		}
		// Whether the client wants problem information is in the CONNECT
		// that did not decode; a CONNACK may carry a Reason String anyway
		// [MQTT-3.1.2-29], and this one says what to fix.
		c.problemInfo = true
		c.refuse(r)
		return nil
	}
	c.problemInfo = cp.Properties == nil || cp.Properties.RequestProblemInfo == nil || *cp.Properties.RequestProblemInfo != 0
	if cp.Properties != nil && cp.Properties.MaximumPacketSize != nil {
		c.clientMaxPacket = *cp.Properties.MaximumPacketSize
	}
	c.keepAlive = time.Duration(cp.KeepAlive) * time.Second
	c.clientID = cp.ClientID // for the audit of a refusal; isolate may assign one
	c.logChanged()
	return cp
}

// connectTooLarge answers a first packet over limits.maxPacketSize that
// is a CONNECT (SPEC 4) with a CONNACK (never a DISCONNECT [MQTT-3.14.0-1])
// saying so, without reading it: the client learns the limit instead of a
// reset. It reports whether it did. (Its own function: errors.As's target
// escapes, and firstPacket must not allocate it per CONNECT.)
func connectTooLarge(c *conn, err error) bool {
	var pe *packetcodec.Error
	if !errors.As(err, &pe) || pe.Code != packets.ConnackPacketTooLarge || pe.Type != packets.CONNECT {
		return false
	}
	c.problemInfo = true
	c.refuse(refusal{code: packets.ConnackPacketTooLarge, reason: "CONNECT too large: " + pe.Reason, label: resultTooLarge, err: err})
	return true
}

// admit maps the client id, compiles the session of id and authorizes the
// Will; it returns the refusal to send, if any.
func (c *conn) admit(cp *packetcodec.Connect, id *authz.Identity) *refusal {
	c.authName = id.AuthenticationName
	if r := c.isolate(cp, id); r != nil {
		return r
	}
	sess := c.newSession(id)
	c.sess.Store(sess)
	c.logChanged()
	if cp.WillFlag {
		if d := sess.grants.Publish(cp.WillTopic); !d.Allowed {
			// SPEC 3.4: a denied Will refuses the CONNECT, naming its topic.
			c.srv.metrics.denials.WithLabelValues(authz.Publish.String()).Inc()
			c.auditEvent("denial", "will", cp.WillTopic, "deny", d.Reason.String(), "")
			return &refusal{code: packets.ConnackNotAuthorized, label: resultWillDenied,
				reason: fmt.Sprintf("will topic '%s' not allowed: %s", cp.WillTopic, denyText(d, "publish"))}
		}
	}
	return nil
}

// established records a connection that has its CONNACK and relays from
// here (state is stateRelay).
func (c *conn) established() {
	sess := c.sess.Load()
	if c.staleSession(sess, c.srv.policyEpoch.Load()) {
		// The policy was reloaded after admit compiled the grants, and
		// Recheck passed this connection by while it was in its
		// handshake (state is stateRelay already, so a later reload's
		// Recheck cannot miss it either; SPEC 3.6); or the broker
		// assigned the client id the grants' ${client.clientId} needs.
		c.recheck()
	}
	c.armExpiry(sess.deadline)
	c.srv.metrics.connects.WithLabelValues(resultSuccess).Inc()
	c.auditEvent("authentication", "connect", "", "allow", "", c.method)
	c.debug("connected", "upstream_client_id", c.upstreamID)
}

// authStart applies the CONNECT table of SPEC 2 up to the token, after
// refusing a connection over limits.maxConnections (admitConn): it
// returns the identity of an anonymous client, or the refusal to send, or
// (both nil) the method and data that verify must check.
func (c *conn) authStart(cp *packetcodec.Connect) (method string, data []byte, id *authz.Identity, r *refusal) {
	s := c.srv
	if c.overLimit {
		return "", nil, nil, &refusal{code: packets.ConnackQuotaExceeded, label: resultServerBusy,
			reason: fmt.Sprintf("the proxy serves its limit of %d connections (limits.maxConnections); try again later", s.cfg.Limits.MaxConnections)}
	}
	if cp.Properties != nil {
		method, data = cp.Properties.AuthMethod, cp.Properties.AuthData
	}
	if method == "" {
		if s.opts.AllowAnonymous {
			return "", nil, &authz.Identity{AuthenticationName: AnonymousPrincipal}, nil
		}
		reason := "authentication required: set Authentication Method OAUTH2-JWT and the token as Authentication Data"
		if cp.PasswordFlag {
			reason = "token in the password field is not accepted: use Authentication Method OAUTH2-JWT in the CONNECT properties"
		}
		return "", nil, nil, &refusal{code: packets.ConnackNotAuthorized, reason: reason, label: resultNotAuthorized}
	}
	if s.opts.Authenticator == nil || !s.opts.Authenticator.SupportsMethod(method) {
		return "", nil, nil, &refusal{code: packets.ConnackBadAuthenticationMethod, label: resultBadMethod,
			reason: "authentication method not supported: use OAUTH2-JWT"}
	}
	c.method = method
	return method, data, nil, nil
}

// verify hands the token to the verifier, size-checked before parsing
// (SPEC 4): by the verifier, which then counts the refusal with its other
// results, where it enforces limits.maxAuthDataSize or less; here
// otherwise.
func (c *conn) verify(ctx context.Context, method string, data []byte) (*authz.Identity, error) {
	limit := c.srv.cfg.Limits.MaxAuthDataSize
	if b, ok := c.srv.opts.Authenticator.(sizeBoundedAuthenticator); (!ok || b.MaxDataSize() > limit) && len(data) > limit {
		return nil, fmt.Errorf("authentication data of %d bytes: %w", len(data), token.ErrTooLarge)
	}
	ctx, cancel := context.WithTimeout(ctx, c.srv.cfg.Limits.ConnectTimeout)
	defer cancel()
	return c.srv.opts.Authenticator.Verify(ctx, method, data)
}

// sizeBoundedAuthenticator is an Authenticator that refuses data larger
// than MaxDataSize before parsing any of it; token.Verifier is one.
type sizeBoundedAuthenticator interface{ MaxDataSize() int }

// cachedAuthenticator is an Authenticator that answers, without waiting,
// for a token it has already verified; token.Verifier is one. A connection
// on an event loop asks it first and verifies on a goroutine only on a miss.
type cachedAuthenticator interface {
	VerifyCached(method string, data []byte) (*authz.Identity, bool)
}

// verifyCached returns the identity of a token the Authenticator has
// already verified and still holds good, or nil.
func (c *conn) verifyCached(method string, data []byte) *authz.Identity {
	ca, ok := c.srv.opts.Authenticator.(cachedAuthenticator)
	if !ok || len(data) > c.srv.cfg.Limits.MaxAuthDataSize {
		return nil
	}
	id, _ := ca.VerifyCached(method, data)
	return id
}

// authRefusal maps a verification error to its CONNACK (SPEC 2, STYLE 17):
// keys unavailable → 0x88, anything else → 0x87 with a reason string that
// names the cause but never echoes the token.
func authRefusal(err error) refusal {
	if errors.Is(err, token.ErrKeysUnavailable) {
		return refusal{code: packets.ConnackServerUnavailable, reason: token.Reason(err), label: resultServerUnavailable, err: err}
	}
	return refusal{code: packets.ConnackNotAuthorized, reason: token.Reason(err), label: resultNotAuthorized, err: err}
}

// AnonymousPrincipal is the authentication name of clients admitted by
// auth.allowAnonymous; assignments may name it as a principal id.
const AnonymousPrincipal = "anonymous"

// newSession compiles the grants of id. Without a policy everything is
// allowed (tests and the foundation stage only).
func (c *conn) newSession(id *authz.Identity) *session {
	s := &session{id: id, grants: allowAll{}, gen: sessionGen.Add(1), epoch: c.srv.policyEpoch.Load(), clientID: c.clientID}
	if p := c.srv.opts.Policy; p != nil {
		s.grants = p.Grants(id, c.clientID)
	}
	if !id.ExpiresAt.IsZero() {
		s.deadline = id.ExpiresAt.Add(c.srv.opts.ClockSkew)
	}
	return s
}

// refuse sends a CONNACK with r's code and closes (the caller returns).
func (c *conn) refuse(r refusal) {
	c.queueRefusal(r)
	c.sendRefusal(r)
}

// sendRefusal writes the queued CONNACK of r out, waiting at most
// finalWriteTimeout, and records the refusal.
func (c *conn) sendRefusal(r refusal) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
	_ = c.cw.Flush()
	c.recordRefusal(r)
}

// queueRefusal queues the CONNACK of r.
func (c *conn) queueRefusal(r refusal) {
	ack := &packets.Connack{ReasonCode: r.code, Properties: &packets.Properties{}}
	ack.Properties.ReasonString = c.reasonString(r.reason, len(c.method))
	if c.method != "" {
		ack.Properties.AuthMethod = c.method
	}
	_ = c.cw.WritePacket(ack)
}

// recordRefusal counts, logs and audits a refused CONNECT.
func (c *conn) recordRefusal(r refusal) {
	c.srv.metrics.connects.WithLabelValues(r.label).Inc()
	attrs := []any{"reason_code", r.code, "result", r.label, "reason", r.reason}
	if r.err != nil {
		attrs = append(attrs, "err", r.err)
	}
	c.log().Info("connect refused", attrs...)
	c.auditEvent("authentication", "connect", "", "deny", r.reason, "")
}

// allowAll is the Grants used when no policy is configured.
type allowAll struct{}

func (allowAll) Publish(string) authz.Decision   { return authz.Decision{Allowed: true} }
func (allowAll) Subscribe(string) authz.Decision { return authz.Decision{Allowed: true} }
func (allowAll) Receive(string) authz.Decision   { return authz.Decision{Allowed: true} }

var _ Grants = allowAll{}
