package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// isolate maps the client id upstream (SPEC 3.5) so that two principals can
// never share or take over each other's broker session. The mapping must be
// one-to-one, and authentication names may contain '/' (a generic issuer's
// sub, such as GitHub's repo:org/repo:ref:…): name "a" with client id "b/c"
// and name "a/b" with client id "c" must not meet at "a/b/c".
func (c *conn) isolate(cp *packetcodec.Connect, id *authz.Identity) *refusal {
	name := id.AuthenticationName
	c.clientID = cp.ClientID
	switch c.srv.cfg.Session.Isolation {
	case IsolationOff:
		c.upstreamID = cp.ClientID
	case IsolationOwner:
		// The owner of a client id is what precedes its first '/', so
		// a name with a '/' could claim another principal's ids.
		if strings.Contains(name, "/") {
			return &refusal{code: packets.ConnackInvalidClientID, label: resultInvalidClientID,
				reason: "session isolation 'owner' needs an authentication name without '/'; this principal needs 'prefix'"}
		}
		if c.clientID == "" {
			c.clientID = name + "/" + randomID()
		} else if c.clientID != name && !strings.HasPrefix(c.clientID, name+"/") {
			return &refusal{code: packets.ConnackInvalidClientID, label: resultInvalidClientID,
				reason: fmt.Sprintf("client id must be '%s' or start with '%s/'", name, name)}
		}
		c.upstreamID = c.clientID
	default: // prefix
		if c.clientID == "" {
			c.clientID = randomID()
		}
		c.upstreamID = upstreamPrefix(name) + "/" + c.clientID
	}
	return nil
}

// upstreamPrefix is name with '%' and '/' percent-encoded, so the first '/'
// of an upstream client id ends the name. Names without either (Entra
// object ids) are unchanged.
func upstreamPrefix(name string) string {
	if !strings.ContainsAny(name, "%/") {
		return name
	}
	return strings.NewReplacer("%", "%25", "/", "%2F").Replace(name)
}

// randomID returns a client id for clients that sent none [MQTT-3.1.3-6].
func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "authproxy-" + hex.EncodeToString(b[:])
}

// DialUpstream dials the broker at cfg's endpoint with d. A Unix socket
// whose accept queue is full refuses a non-blocking connect at once with
// EAGAIN, where TCP would queue the SYN and wait; such dials are retried
// with a growing pause until ctx ends, so a burst of CONNECTs waits for the
// broker instead of getting CONNACK 0x88.
func DialUpstream(ctx context.Context, d Dialer, cfg UpstreamConfig) (net.Conn, error) {
	network, addr := cfg.Endpoint()
	const full = "the broker's accept queue stayed full"
	pause := 100 * time.Microsecond
	for retried := false; ; retried = true {
		c, err := d.DialContext(ctx, network, addr)
		switch {
		case err == nil:
			return c, nil
		case network != "unix" || !errors.Is(err, syscall.EAGAIN):
			// Timed out while retrying: the dialer may see the deadline
			// pass before ctx reports it.
			if retried && (ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) {
				err = fmt.Errorf("%w (%s)", err, full)
			}
			return nil, err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (%s)", err, full)
		case <-t.C:
		}
		pause = min(2*pause, 10*time.Millisecond)
	}
}

// connectUpstream dials the broker, sends the rewritten CONNECT, reads its
// CONNACK and relays it to the client. It reports whether relaying starts.
func (c *conn) connectUpstream(ctx context.Context, cp *packetcodec.Connect, id *authz.Identity) bool {
	s := c.srv
	if e := c.pending(); e != nil {
		// Stopped while authenticating (shutdown, say): the client
		// socket is closed; do not dial, let alone take over a session.
		c.stoppedInHandshake(*e)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Upstream.DialTimeout)
	defer cancel()
	up, err := DialUpstream(ctx, s.opts.Dialer, s.cfg.Upstream)
	if err != nil {
		s.metrics.upstreamDialErrors.Inc()
		c.refuse(upstreamUnavailable(fmt.Errorf("dial upstream %s: %w", s.cfg.Upstream.Address, err)))
		return false
	}
	maxSize := c.useUpstream(up, cp)
	stop := context.AfterFunc(ctx, func() { up.Close() })
	defer stop()

	if err := c.writeUpstreamConnect(cp, id, maxSize); err != nil {
		up.Close()
		c.refuse(upstreamUnavailable(fmt.Errorf("send CONNECT upstream: %w", err)))
		return false
	}
	_ = up.SetReadDeadline(time.Now().Add(s.cfg.Upstream.DialTimeout))
	ack, err := c.readUpstreamConnack()
	if err != nil {
		up.Close()
		c.refuse(upstreamUnavailable(fmt.Errorf("read CONNACK from upstream: %w", err)))
		return false
	}
	_ = up.SetReadDeadline(time.Time{})
	if !stop() {
		up.Close()
		c.refuse(upstreamUnavailable(ctx.Err()))
		return false
	}
	if r := upstreamRefusal(ack); r != nil {
		up.Close()
		c.refuse(*r)
		return false
	}
	c.adoptClientID(ack, cp)
	if pending := c.claimConnack(false); pending != nil {
		// The broker has accepted the session but the client will never
		// hear of it: end it upstream as the stop asks (a shutdown
		// discards the Will).
		if pending.upstreamClean {
			c.disconnectUpstream()
		}
		up.Close()
		c.stoppedInHandshake(*pending)
		return false
	}
	c.relayConnack(ack, cp)
	if err := c.cw.Flush(); err != nil {
		up.Close()
		return false
	}
	return true
}

// useUpstream makes up the connection's upstream socket, with a Reader
// that accepts what the client accepts, and returns that packet size.
func (c *conn) useUpstream(up net.Conn, cp *packetcodec.Connect) uint32 {
	maxSize := uint32(c.srv.cfg.Limits.MaxPacketSize)
	if cp.Properties != nil && cp.Properties.MaximumPacketSize != nil {
		maxSize = min(maxSize, *cp.Properties.MaximumPacketSize)
	}
	c.mu.Lock()
	c.up = up
	c.mu.Unlock()
	c.ur = packetcodec.NewReader(up, int(maxSize))
	c.uw = packetcodec.NewWriter(up)
	return maxSize
}

// upstreamUnavailable is the CONNACK 0x88 for a broker that could not be
// reached, did not answer or broke the exchange.
func upstreamUnavailable(err error) refusal {
	return refusal{code: packets.ConnackServerUnavailable, reason: "upstream broker unavailable",
		label: resultServerUnavailable, err: err}
}

// upstreamRefusal is what the client is told when the broker refused the
// CONNECT, or nil when it accepted.
func upstreamRefusal(ack *packets.Connack) *refusal {
	if ack.ReasonCode < 0x80 {
		return nil
	}
	r := refusal{code: ack.ReasonCode, reason: ack.Properties.ReasonString, label: resultUpstreamRefused,
		err: fmt.Errorf("upstream refused CONNECT with 0x%02x", ack.ReasonCode)}
	switch ack.ReasonCode {
	case packets.ConnackBadUsernameOrPassword, packets.ConnackBadAuthenticationMethod, packets.ConnackNotAuthorized,
		packets.ConnackUnsupportedProtocolVersion, packets.ConnackMalformedPacket, packets.ConnackProtocolError:
		// The broker refused the proxy's own credentials or CONNECT: a
		// deployment problem, not the client's (SPEC 2 last row).
		r.code, r.reason = packets.ConnackServerUnavailable, "upstream broker refused the proxy"
	}
	return &r
}

// claimConnack decides, under mu with stop's check, whether the client
// hears that the broker accepted: it returns the stop requested meanwhile,
// whose session must then be ended instead, or nil having marked the
// CONNACK sent (and, with relayNow, the connection relaying).
func (c *conn) claimConnack(relayNow bool) *ending {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pendingStop != nil {
		return c.pendingStop
	}
	c.connackSent = true
	if relayNow {
		c.state.Store(stateRelay)
	}
	return nil
}

// pending returns the stop requested during the handshake, if any.
func (c *conn) pending() *ending {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pendingStop
}

// stoppedInHandshake records a connection stopped before its CONNACK.
func (c *conn) stoppedInHandshake(e ending) {
	c.srv.metrics.connects.WithLabelValues(resultStopped).Inc()
	c.debug("connection stopped before CONNACK", "cause", e.cause)
}

// writeUpstreamConnect sends the client's CONNECT upstream without
// Authentication Method or Data, with the mapped client id, the configured
// username and password, no topic aliases (SPEC 4) and the packet size the
// proxy accepts. Will and its properties pass through unchanged.
func (c *conn) writeUpstreamConnect(cp *packetcodec.Connect, id *authz.Identity, maxSize uint32) error {
	s := c.srv
	up := *cp.Connect
	props := packets.Properties{}
	if cp.Properties != nil {
		props = *cp.Properties
	}
	props.AuthMethod, props.AuthData = "", nil
	props.TopicAliasMaximum = nil
	props.MaximumPacketSize = &maxSize
	up.Properties = &props
	up.ClientID = c.upstreamID
	up.Username, up.UsernameFlag = s.cfg.Upstream.Username, true
	if up.Username == "" {
		up.Username = id.AuthenticationName
	}
	up.Password, up.PasswordFlag = nil, false
	if len(s.opts.UpstreamPassword) > 0 {
		up.Password, up.PasswordFlag = s.opts.UpstreamPassword, true
	}
	out := packetcodec.Connect{Connect: &up, WillPropertiesRaw: cp.WillPropertiesRaw}
	b, err := packetcodec.EncodeConnect(nil, &out)
	if err != nil {
		return err
	}
	c.upWrittenAt = monoNanos() // the broker's keep-alive starts here
	return c.uw.WriteAndFlush(b)
}

// readUpstreamConnack reads the broker's answer to the CONNECT.
func (c *conn) readUpstreamConnack() (*packets.Connack, error) {
	f, err := c.ur.ReadFrame()
	if err != nil {
		return nil, err
	}
	c.srv.metrics.packet(dirFromUpstream, f.Type)
	return parseConnack(f)
}

// parseConnack decodes the broker's answer to the CONNECT.
func parseConnack(f packetcodec.Frame) (*packets.Connack, error) {
	if f.Type != packets.CONNACK {
		return nil, fmt.Errorf("upstream answered CONNECT with packet type %s", packetcodec.TypeName(f.Type))
	}
	cp, err := packetcodec.Decode(f)
	if err != nil {
		return nil, err
	}
	ack, ok := cp.Content.(*packets.Connack)
	if !ok {
		return nil, errors.New("upstream CONNACK did not decode")
	}
	if ack.Properties == nil {
		ack.Properties = &packets.Properties{}
	}
	return ack, nil
}

// adoptClientID settles the client id the client hears of in the broker's
// successful CONNACK: the one the proxy assigned (prefix, owner), or, with
// isolation off, the broker's. It runs before claimConnack makes the
// connection relay (a Recheck may then read c.clientID).
func (c *conn) adoptClientID(ack *packets.Connack, cp *packetcodec.Connect) {
	off := c.srv.cfg.Session.Isolation == IsolationOff
	p := ack.Properties
	switch {
	case cp.ClientID == "" && !off:
		p.AssignedClientID = c.clientID
	case off && p.AssignedClientID != "":
		// Before claimConnack's store of stateRelay, which a Recheck
		// loads before it reads c.clientID.
		c.clientID = p.AssignedClientID
		c.upstreamID = p.AssignedClientID
		c.logChanged()
	default:
		p.AssignedClientID = ""
	}
}

// relayConnack writes the broker's successful CONNACK to the client,
// echoing the Authentication Method [MQTT-4.12.0-5], returning the client id
// the client knows (never the upstream's mapped one), and advertising the
// proxy's own limits.
func (c *conn) relayConnack(ack *packets.Connack, cp *packetcodec.Connect) {
	s := c.srv
	p := ack.Properties
	p.AuthMethod, p.AuthData = c.method, nil
	maxSize := uint32(s.cfg.Limits.MaxPacketSize)
	c.upMaxPacket = maxMQTTPacketSize
	if p.MaximumPacketSize != nil {
		maxSize = min(maxSize, *p.MaximumPacketSize)
		c.upMaxPacket = int(*p.MaximumPacketSize)
	}
	p.MaximumPacketSize = &maxSize
	c.cr.SetMaxPacketSize(int(maxSize))
	c.aliasMax = uint16(s.cfg.Limits.TopicAliasMaximum)
	if c.aliasMax > 0 {
		am := c.aliasMax
		p.TopicAliasMaximum = &am
	} else {
		p.TopicAliasMaximum = nil
	}
	if p.ServerKeepAlive != nil {
		c.keepAlive = time.Duration(*p.ServerKeepAlive) * time.Second
	}
	if !c.problemInfo {
		p.ReasonString = ""
	}
	_ = c.cw.WritePacket(ack)
}
