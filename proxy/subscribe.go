package proxy

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// pendingSubscribe remembers a forwarded SUBSCRIBE until the broker's SUBACK
// comes back: to forget the filters the broker refused (they must not end
// the connection at the next policy re-check, SPEC 3.6) and, when the proxy
// denied some filters itself, to give the client one SUBACK in its order.
type pendingSubscribe struct {
	reasons []byte   // per filter of the client's SUBSCRIBE; 0x87 where denied; nil when none was
	allowed []int    // indexes of reasons filled, in order, by the broker's SUBACK
	reason  string   // Reason String naming the denied filters
	added   []string // per forwarded filter: the filter if this SUBSCRIBE decides whether it stays in subs, else ""
	seq     uint32   // the subs value of the filters in added while this SUBSCRIBE pends
}

// cost is about what p holds, counted against maxPendingSubscribeBytes.
func (p *pendingSubscribe) cost() int {
	return 64 + len(p.reasons) + 8*len(p.allowed) + 16*len(p.added) + len(p.reason)
}

// maxPendingSubscribeBytes bounds what a connection's SUBSCRIBEs awaiting
// the broker's SUBACK hold: a client that sends SUBSCRIBEs (even of filters
// it holds already) without reading the SUBACKs would otherwise grow them
// up to 65,535 packets' worth. Beyond it the client gets DISCONNECT 0x97.
const maxPendingSubscribeBytes = 1 << 20

// maxSubscriptionBytes bounds the filters a connection's live subscriptions
// hold (each up to 65,535 bytes, any number of them): a filter that would
// take it past gets SUBACK 0x97 Quota exceeded and is not forwarded. About
// 9,000 subscriptions of 50-byte filters fit.
const maxSubscriptionBytes = 1 << 20

// subState is what a connection knows of one of its subscriptions: seq is
// the pendingSubscribe.seq of the SUBSCRIBE whose SUBACK decides whether it
// is held (0 once settled: held), granted whether an earlier SUBACK has
// granted it already.
type subState struct {
	seq     uint32
	granted bool
}

// subscriptionCost is what a live filter counts against
// maxSubscriptionBytes: its bytes and about what a map entry costs.
func subscriptionCost(filter string) int { return len(filter) + 64 }

// clientSubscribe judges each filter on its own (SPEC 3.2) and forwards the
// allowed ones under the client's packet id; if none is allowed the proxy
// answers the SUBACK itself (SPEC 3.4).
func (c *conn) clientSubscribe(f packetcodec.Frame) *ending {
	cp, err := packetcodec.Decode(f)
	if err != nil {
		e := clientReadEnding(err)
		return &e
	}
	sub := cp.Content.(*packets.Subscribe)
	c.mu.Lock()
	_, inUse := c.pendingSubs[sub.PacketID]
	c.mu.Unlock()
	if inUse {
		// [MQTT-2.2.1-3]. Both SUBACKs would carry the id, and the proxy
		// could not tell which answers which.
		e := protocolError(fmt.Sprintf("packet identifier %d is in use by a SUBSCRIBE awaiting its SUBACK", sub.PacketID))
		return &e
	}
	grants := c.sess.Load().grants
	reasons := make([]byte, len(sub.Subscriptions))
	var allowed []int
	denied := 0
	var why [authz.InvalidTopic + 1][]string // denied filters by DenyReason, for the reason string
	for i, s := range sub.Subscriptions {
		d := grants.Subscribe(s.Topic)
		if d.Allowed {
			allowed = append(allowed, i)
			continue
		}
		reasons[i] = packets.SubackNotauthorized
		denied++
		if int(d.Reason) < len(why) {
			why[d.Reason] = append(why[d.Reason], s.Topic)
		}
		c.srv.metrics.denials.WithLabelValues(authz.Subscribe.String()).Inc()
		c.auditEvent("denial", "subscribe", s.Topic, "deny", d.Reason.String(), d.TopicSpace)
	}
	var parts []string
	for r, filters := range why {
		if len(filters) > 0 {
			parts = append(parts, fmt.Sprintf("subscribe to '%s' not allowed: %s", strings.Join(filters, "', '"),
				denyText(authz.Decision{Reason: authz.DenyReason(r)}, "subscribe")))
		}
	}
	reason := strings.Join(parts, "; ")
	c.mu.Lock()
	if c.subs == nil {
		c.subs = make(map[string]subState)
	}
	c.subSeq++
	if c.subSeq == 0 { // 0 marks a settled filter
		c.subSeq = 1
	}
	p := &pendingSubscribe{seq: c.subSeq}
	live, overQuota := allowed[:0], 0
	for _, i := range allowed {
		filter := sub.Subscriptions[i].Topic
		if st, ok := c.subs[filter]; ok {
			live = append(live, i)
			if st.seq == 0 {
				// Settled: a refusal of this SUBSCRIBE may leave the
				// broker's subscription in place, so it stays watched.
				p.added = append(p.added, "")
				continue
			}
			// Still pending from an earlier SUBSCRIBE (perhaps one the
			// client has since unsubscribed): the newest one decides,
			// unless an earlier one is granted (upstreamSuback).
			st.seq = p.seq
			c.subs[filter] = st
			p.added = append(p.added, filter)
			continue
		}
		if c.subsBytes+subscriptionCost(filter) > maxSubscriptionBytes {
			reasons[i] = packets.SubackQuotaexceeded
			denied++
			overQuota++
			c.srv.metrics.subscriptionsOverQuota.Inc()
			c.auditEvent("denial", "subscribe", filter, "deny", "quota_exceeded", "")
			continue
		}
		c.subs[filter] = subState{seq: p.seq}
		c.subsBytes += subscriptionCost(filter)
		live = append(live, i)
		p.added = append(p.added, filter)
	}
	allowed = live
	c.mu.Unlock()
	if overQuota > 0 {
		if reason != "" {
			reason += "; "
		}
		reason += fmt.Sprintf("%d filter(s) over the connection's subscription quota (%d KiB of filters)", overQuota, maxSubscriptionBytes>>10)
	}
	if len(allowed) == 0 {
		ack := &packets.Suback{PacketID: sub.PacketID, Reasons: reasons,
			Properties: &packets.Properties{ReasonString: c.reasonString(reason, len(reasons))}}
		if err := c.cw.WritePacket(ack); err != nil {
			e := clientWriteFailed(err)
			return &e
		}
		return c.keepUpstreamAlive()
	}
	p.allowed = allowed
	if denied > 0 {
		p.reasons, p.reason = reasons, reason
	}
	c.mu.Lock()
	if c.pendingSubs == nil {
		c.pendingSubs = make(map[uint16]*pendingSubscribe)
	}
	if c.pendingSubsBytes+p.cost() > maxPendingSubscribeBytes {
		c.mu.Unlock()
		return &ending{cause: "client_quota_exceeded", clientCode: packets.DisconnectQuotaExceeded,
			reason: fmt.Sprintf("SUBSCRIBEs awaiting the broker's SUBACK hold more than %d KiB", maxPendingSubscribeBytes>>10)}
	}
	c.pendingSubs[sub.PacketID] = p
	c.pendingSubsBytes += p.cost()
	c.mu.Unlock()
	if denied == 0 {
		return c.toUpstream(f.Raw)
	}
	kept := make([]packets.SubOptions, 0, len(allowed))
	for _, i := range allowed {
		kept = append(kept, sub.Subscriptions[i])
	}
	sub.Subscriptions = kept
	var buf bytes.Buffer
	if _, err := sub.WriteTo(&buf); err != nil {
		e := upstreamLost(fmt.Errorf("encode SUBSCRIBE: %w", err))
		return &e
	}
	return c.toUpstream(buf.Bytes())
}

// upstreamSuback merges the broker's SUBACK with the proxy's denials when the
// SUBSCRIBE was partially denied; otherwise it is forwarded unchanged. Filters
// the broker refused are dropped from the live set, unless a later SUBSCRIBE
// of the same filter still awaits its answer.
func (c *conn) upstreamSuback(f packetcodec.Frame) *ending {
	cp, err := packetcodec.Decode(f)
	if err != nil {
		e := upstreamLost(err)
		return &e
	}
	ack := cp.Content.(*packets.Suback)
	c.mu.Lock()
	p := c.pendingSubs[ack.PacketID]
	delete(c.pendingSubs, ack.PacketID)
	if p != nil {
		c.pendingSubsBytes -= p.cost()
	}
	if p != nil {
		for j, code := range ack.Reasons {
			if j >= len(p.added) || p.added[j] == "" {
				continue
			}
			filter := p.added[j]
			st, ok := c.subs[filter]
			switch {
			case !ok: // unsubscribed meanwhile
			case st.seq != p.seq: // a later SUBSCRIBE of it pends and decides
				if code < 0x80 {
					st.granted = true // the broker holds it whatever the later answer
					c.subs[filter] = st
				}
			case code < 0x80 || st.granted:
				c.subs[filter] = subState{} // settled, watched
			default:
				c.dropSubscription(filter)
			}
		}
	}
	c.mu.Unlock()
	if p == nil || p.reasons == nil {
		return c.toClient(f.Raw)
	}
	for j, i := range p.allowed {
		if j < len(ack.Reasons) {
			p.reasons[i] = ack.Reasons[j]
		}
	}
	if ack.Properties == nil {
		ack.Properties = &packets.Properties{}
	}
	if ack.Properties.ReasonString == "" {
		ack.Properties.ReasonString = c.reasonString(p.reason, len(p.reasons))
	}
	ack.Reasons = p.reasons
	if err := c.cw.WritePacket(ack); err != nil {
		e := clientWriteFailed(err)
		return &e
	}
	return nil
}

// clientUnsubscribe forwards UNSUBSCRIBE unchanged (SPEC: UNSUBSCRIBE is
// forwarded) and forgets the filters for policy re-checks.
func (c *conn) clientUnsubscribe(f packetcodec.Frame) *ending {
	cp, err := packetcodec.Decode(f)
	if err != nil {
		e := clientReadEnding(err)
		return &e
	}
	u := cp.Content.(*packets.Unsubscribe)
	c.mu.Lock()
	for _, t := range u.Topics {
		c.dropSubscription(t)
	}
	c.mu.Unlock()
	return c.toUpstream(f.Raw)
}

// dropSubscription forgets a live filter. c.mu is held.
func (c *conn) dropSubscription(filter string) {
	if _, ok := c.subs[filter]; ok {
		delete(c.subs, filter)
		c.subsBytes -= subscriptionCost(filter)
	}
}

// deniedSubscription returns a live subscription that the current grants no
// longer allow, if any (SPEC 3.6).
func (c *conn) deniedSubscription(g Grants) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for filter := range c.subs {
		if !g.Subscribe(filter).Allowed {
			return filter, true
		}
	}
	return "", false
}
