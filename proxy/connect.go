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
// upstream (if dialled) closed.
func (c *conn) handshake(ctx context.Context) bool {
	s := c.srv
	_ = c.nc.SetReadDeadline(time.Now().Add(s.cfg.Limits.ConnectTimeout))
	f, err := c.cr.ReadFrame()
	if err != nil || f.Type != packets.CONNECT {
		// SPEC 2: first packet not CONNECT, or none in time → close without reply.
		s.metrics.connects.WithLabelValues(resultNoConnect).Inc()
		c.log.Debug("no connect", "err", err)
		return false
	}
	cp, err := packetcodec.DecodeConnect(f)
	if errors.Is(err, packetcodec.ErrProtocolV3) {
		// SPEC 2: v3 CONNACK return code 0x01 (unacceptable protocol version).
		s.metrics.connects.WithLabelValues(resultUnsupportedV3).Inc()
		_ = c.cw.WriteAndFlush(packetcodec.V3ConnackUnacceptableProtocol)
		return false
	}
	if err != nil {
		var pe *packetcodec.Error
		r := refusal{code: packets.ConnackMalformedPacket, reason: "malformed CONNECT", label: resultProtocolError, err: err}
		if errors.As(err, &pe) {
			r.code, r.reason = pe.Code, pe.Reason
		}
		c.refuse(r)
		return false
	}
	c.problemInfo = cp.Properties == nil || cp.Properties.RequestProblemInfo == nil || *cp.Properties.RequestProblemInfo != 0
	c.keepAlive = time.Duration(cp.KeepAlive) * time.Second
	c.clientID = cp.ClientID // for the audit of a refusal; isolate may assign one
	c.log = c.log.With("client_id", cp.ClientID)

	id, r := c.authenticate(ctx, cp)
	if r != nil {
		c.refuse(*r)
		return false
	}
	if r := c.isolate(cp, id); r != nil {
		c.refuse(*r)
		return false
	}
	sess := c.newSession(id)
	c.sess.Store(sess)
	c.log = c.log.With("principal", id.AuthenticationName)
	if cp.WillFlag {
		if d := sess.grants.Publish(cp.WillTopic); !d.Allowed {
			// SPEC 3.4: a denied Will refuses the CONNECT, naming its topic.
			s.metrics.denials.WithLabelValues(authz.Publish.String()).Inc()
			c.auditEvent("denial", "will", cp.WillTopic, "deny", d.Reason.String(), "")
			c.refuse(refusal{code: packets.ConnackNotAuthorized, label: resultWillDenied,
				reason: fmt.Sprintf("will topic '%s' not allowed: no topic space grants publish", cp.WillTopic)})
			return false
		}
	}
	if !c.connectUpstream(ctx, cp, id) {
		return false
	}
	c.mu.Lock()
	c.state.Store(stateRelay) // under mu: see stop
	c.mu.Unlock()
	_ = c.nc.SetReadDeadline(time.Time{})
	c.armExpiry(sess.deadline)
	s.metrics.connects.WithLabelValues(resultSuccess).Inc()
	c.auditEvent("authentication", "connect", "", "allow", "", c.method)
	c.log.Debug("connected", "upstream_client_id", c.upstreamID)
	return true
}

// authenticate applies the CONNECT table of SPEC 2 and returns the identity
// or the refusal to send.
func (c *conn) authenticate(ctx context.Context, cp *packetcodec.Connect) (*authz.Identity, *refusal) {
	s := c.srv
	var method string
	var data []byte
	if cp.Properties != nil {
		method, data = cp.Properties.AuthMethod, cp.Properties.AuthData
	}
	if method == "" {
		if s.opts.AllowAnonymous {
			return &authz.Identity{AuthenticationName: AnonymousPrincipal}, nil
		}
		reason := "authentication required: set Authentication Method OAUTH2-JWT and the token as Authentication Data"
		if cp.PasswordFlag {
			reason = "token in the password field is not accepted: use Authentication Method OAUTH2-JWT in the CONNECT properties"
		}
		return nil, &refusal{code: packets.ConnackNotAuthorized, reason: reason, label: resultNotAuthorized}
	}
	if s.opts.Authenticator == nil || !s.opts.Authenticator.SupportsMethod(method) {
		return nil, &refusal{code: packets.ConnackBadAuthenticationMethod, label: resultBadMethod,
			reason: "authentication method not supported: use OAUTH2-JWT"}
	}
	c.method = method
	id, err := c.verify(ctx, method, data)
	if err != nil {
		r := authRefusal(err)
		return nil, &r
	}
	return id, nil
}

// verify checks the size limit before handing the token to the verifier
// (SPEC 4: Authentication Data is size-checked before parsing).
func (c *conn) verify(ctx context.Context, method string, data []byte) (*authz.Identity, error) {
	if len(data) > c.srv.cfg.Limits.MaxAuthDataSize {
		return nil, fmt.Errorf("authentication data of %d bytes: %w", len(data), token.ErrTooLarge)
	}
	ctx, cancel := context.WithTimeout(ctx, c.srv.cfg.Limits.ConnectTimeout)
	defer cancel()
	return c.srv.opts.Authenticator.Verify(ctx, method, data)
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
	s := &session{id: id, grants: allowAll{}}
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
	s := c.srv
	s.metrics.connects.WithLabelValues(r.label).Inc()
	ack := &packets.Connack{ReasonCode: r.code, Properties: &packets.Properties{}}
	if c.problemInfo && r.reason != "" {
		ack.Properties.ReasonString = r.reason
	}
	if c.method != "" {
		ack.Properties.AuthMethod = c.method
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(finalWriteTimeout))
	if err := c.cw.WritePacket(ack); err == nil {
		_ = c.cw.Flush()
	}
	attrs := []any{"reason_code", r.code, "result", r.label, "reason", r.reason}
	if r.err != nil {
		attrs = append(attrs, "err", r.err)
	}
	c.log.Info("connect refused", attrs...)
	c.auditEvent("authentication", "connect", "", "deny", r.reason, "")
}

// allowAll is the Grants used when no policy is configured.
type allowAll struct{}

func (allowAll) Publish(string) authz.Decision   { return authz.Decision{Allowed: true} }
func (allowAll) Subscribe(string) authz.Decision { return authz.Decision{Allowed: true} }
func (allowAll) Receive(string) authz.Decision   { return authz.Decision{Allowed: true} }

var _ Grants = allowAll{}
