package proxy

import (
	"fmt"
	"unsafe"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// bytesView returns b as a string without copying. The string must not
// outlive the frame b aliases: Grants implementations only compare it.
func bytesView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// maxCachedTopic bounds the topic a decisionCache keeps: a longer one is
// decided each time rather than pinned on the connection.
const maxCachedTopic = 256

// decisionCache holds the last topic one direction of a connection decided
// and the decision. A device publishes to (and receives) the same few
// topics again and again; comparing a topic costs a fraction of deciding it
// (the validity check and two trie walks, issue 5). It is keyed by the
// session's number: a session is replaced, never changed, when the grants
// change (re-authentication, a policy reload), so new grants always decide
// anew.
type decisionCache struct {
	gen   uint64 // the session's; 0 when empty
	topic []byte
	d     authz.Decision
}

// decide returns decide(topic) under sess, from the cache when the last
// topic decided under sess was the same.
func (dc *decisionCache) decide(sess *session, topic string, decide func(Grants, string) authz.Decision) authz.Decision {
	if dc.gen == sess.gen && string(dc.topic) == topic {
		return dc.d
	}
	d := decide(sess.grants, topic)
	if len(topic) > maxCachedTopic {
		dc.gen = 0
		return d
	}
	dc.gen, dc.topic, dc.d = sess.gen, append(dc.topic[:0], topic...), d
	return d
}

// decidePublish and decideReceive are the two directions' decisions.
func decidePublish(g Grants, topic string) authz.Decision { return g.Publish(topic) }
func decideReceive(g Grants, topic string) authz.Decision { return g.Receive(topic) }

// maxAliasBytes bounds the topics one connection's aliases hold: at the
// largest Topic Alias Maximum (65,535) and topic (65,535 bytes) they could
// otherwise hold 4 GiB. Beyond it the client gets DISCONNECT 0x97.
const maxAliasBytes = 256 << 10

// aliasCost is what an alias for topic counts against maxAliasBytes: its
// bytes and about what a map entry costs, so that many short topics are
// bounded too (65,535 one-byte topics take some 4 MB of map).
func aliasCost(topic string) int {
	if topic == "" {
		return 0
	}
	return len(topic) + 64
}

// clientPublish resolves a topic alias, authorizes the PUBLISH and forwards
// it or answers it (SPEC 3.4, 4). Allowed packets without an alias go out as
// their original bytes.
func (c *conn) clientPublish(f packetcodec.Frame) *ending {
	var pv packetcodec.PublishView
	if err := packetcodec.ParsePublish(f, &pv); err != nil {
		e := clientReadEnding(err)
		return &e
	}
	if pv.HasSubscriptionID {
		e := protocolError("a PUBLISH from a client must not carry a subscription identifier") // [MQTT-3.3.4-6]
		return &e
	}
	topic := bytesView(pv.Topic)
	if pv.TopicAlias != 0 {
		// SPEC 4: aliases are resolved before authorization and never
		// forwarded; the upstream CONNECT advertised no aliases.
		if pv.TopicAlias > c.aliasMax {
			return &ending{cause: "client_protocol_error", clientCode: packets.DisconnectTopicAliasInvalid,
				reason: fmt.Sprintf("topic alias %d above the maximum %d", pv.TopicAlias, c.aliasMax)}
		}
		old := c.aliases[pv.TopicAlias]
		switch {
		case len(pv.Topic) == 0 && old == "":
			e := protocolError(fmt.Sprintf("topic alias %d was never defined", pv.TopicAlias))
			return &e
		case len(pv.Topic) > 0 && topic != old: // a client may repeat the topic each time
			if c.aliasBytes+aliasCost(topic)-aliasCost(old) > maxAliasBytes {
				return &ending{cause: "client_quota_exceeded", clientCode: packets.DisconnectQuotaExceeded,
					reason: fmt.Sprintf("topic aliases would hold more than %d KiB of topics", maxAliasBytes>>10)}
			}
			if c.aliases == nil {
				c.aliases = make(map[uint16]string)
			}
			c.aliases[pv.TopicAlias] = string(pv.Topic)
			c.aliasBytes += aliasCost(topic) - aliasCost(old)
		}
		topic = c.aliases[pv.TopicAlias]
	}
	if d := c.lastPublish.decide(c.sess.Load(), topic, decidePublish); !d.Allowed {
		return c.denyPublish(&pv, topic, d)
	}
	if pv.TopicAlias != 0 {
		out, n := packetcodec.AppendPublishWithTopicWithin(c.scratch[:0], f, &pv, topic, c.upMaxPacket)
		if n > c.upMaxPacket {
			// The client kept to the limit the proxy advertised; the
			// topic in place of its alias takes the packet past the
			// broker's, who would end the session over it. Not sent
			// [MQTT-3.2.2-15]; QoS 0 is dropped, QoS 1 and 2 told why.
			c.debug("publish too large for the broker once its alias is resolved", "size", n, "broker_max", c.upMaxPacket)
			return c.answerPublish(&pv, packets.PubackImplementationSpecificError, fmt.Sprintf(
				"with topic alias %d resolved this PUBLISH is %d bytes, over the broker's maximum packet size %d: send it with a shorter topic", pv.TopicAlias, n, c.upMaxPacket))
		}
		c.scratch = out
		e := c.toUpstream(c.scratch)
		if cap(c.scratch) > 64*1024 {
			c.scratch = nil // do not pin a large buffer on an idle connection
		}
		return e
	}
	return c.toUpstream(f.Raw)
}

// denyPublish answers a denied PUBLISH itself: QoS 0 is dropped, QoS 1 gets
// PUBACK 0x87, QoS 2 PUBREC 0x87, all with the client's packet id; nothing is
// forwarded (SPEC 3.4).
func (c *conn) denyPublish(pv *packetcodec.PublishView, topic string, d authz.Decision) *ending {
	c.srv.metrics.denials.WithLabelValues(authz.Publish.String()).Inc()
	reason := fmt.Sprintf("publish to '%s' not allowed: %s", topic, denyText(d, "publish"))
	c.auditEvent("denial", "publish", topic, "deny", d.Reason.String(), d.TopicSpace)
	return c.answerPublish(pv, packets.PubackNotAuthorized, reason)
}

// answerPublish answers a PUBLISH the proxy does not forward with code (the
// same in PUBACK and PUBREC) and reason, under the client's packet id; QoS
// 0 has no answer.
func (c *conn) answerPublish(pv *packetcodec.PublishView, code byte, reason string) *ending {
	props := &packets.Properties{ReasonString: c.reasonString(reason, 0)}
	var err error
	switch pv.QoS {
	case 1:
		err = c.cw.WritePacket(&packets.Puback{PacketID: pv.PacketID, ReasonCode: code, Properties: props})
	case 2:
		err = c.cw.WritePacket(&packets.Pubrec{PacketID: pv.PacketID, ReasonCode: code, Properties: props})
	}
	if err != nil {
		e := clientWriteFailed(err)
		return &e
	}
	return c.keepUpstreamAlive()
}

// denyText explains a denial in a reason string.
func denyText(d authz.Decision, action string) string {
	switch d.Reason {
	case authz.DenyAssignment:
		return "a deny assignment covers it"
	case authz.InvalidTopic:
		return "invalid or reserved topic"
	}
	if action == "subscribe" {
		// Also when some space grants subscribe: a filter must lie
		// within one template (devices/+/# is not within devices/${...}/#).
		return "no topic space granting subscribe has a template covering the whole filter"
	}
	return "no topic space granting " + action + " matches the topic"
}

// upstreamPublish delivers a broker PUBLISH if the client's identity may
// receive its topic; otherwise it is dropped and, for QoS 1/2, acknowledged
// to the broker by the proxy (SPEC 3.4) so the broker does not redeliver it.
func (c *conn) upstreamPublish(f packetcodec.Frame) *ending {
	var pv packetcodec.PublishView
	if err := packetcodec.ParsePublish(f, &pv); err != nil {
		e := upstreamLost(err)
		return &e
	}
	if pv.TopicAlias != 0 {
		// The upstream CONNECT set Topic Alias Maximum 0 (SPEC 4).
		e := upstreamLost(fmt.Errorf("upstream sent topic alias %d although none was allowed", pv.TopicAlias))
		return &e
	}
	topic := bytesView(pv.Topic)
	d := c.lastReceive.decide(c.sess.Load(), topic, decideReceive)
	if d.Allowed {
		return c.toClient(f.Raw)
	}
	c.srv.metrics.denials.WithLabelValues(authz.Receive.String()).Inc()
	c.auditEvent("denial", "receive", topic, "deny", d.Reason.String(), d.TopicSpace)
	var err error
	switch pv.QoS {
	case 1:
		err = c.uw.WritePacket(&packets.Puback{PacketID: pv.PacketID, ReasonCode: packets.PubackSuccess, Properties: &packets.Properties{}})
	case 2:
		c.mu.Lock()
		if c.localPubrec == nil {
			c.localPubrec = make(map[uint16]struct{})
		}
		c.localPubrec[pv.PacketID] = struct{}{}
		c.mu.Unlock()
		err = c.uw.WritePacket(&packets.Pubrec{PacketID: pv.PacketID, ReasonCode: packets.PubrecSuccess, Properties: &packets.Properties{}})
	}
	if err != nil {
		e := upstreamLost(err)
		return &e
	}
	return nil
}

// upstreamPubrel completes a QoS 2 delivery the proxy dropped itself, or
// forwards the PUBREL to the client.
func (c *conn) upstreamPubrel(f packetcodec.Frame) *ending {
	id, err := packetcodec.PacketID(f)
	if err != nil {
		e := upstreamLost(err)
		return &e
	}
	c.mu.Lock()
	_, local := c.localPubrec[id]
	delete(c.localPubrec, id)
	c.mu.Unlock()
	if !local {
		return c.toClient(f.Raw)
	}
	if err := c.uw.WritePacket(&packets.Pubcomp{PacketID: id, ReasonCode: packets.PubcompSuccess, Properties: &packets.Properties{}}); err != nil {
		e := upstreamLost(err)
		return &e
	}
	return nil
}
