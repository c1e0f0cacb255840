package packetcodec

import (
	"slices"

	"github.com/eclipse/paho.golang/packets"
)

// PublishView is a zero-allocation view of a PUBLISH frame: the fields the
// proxy needs to resolve aliases and authorize, and the offsets needed to
// rewrite it. Topic aliases Frame.Raw, so a view is valid only as long as
// its frame.
type PublishView struct {
	// Topic is the Topic Name; empty when the packet uses an established
	// Topic Alias. It aliases Frame.Raw.
	Topic []byte
	// QoS is 0, 1 or 2.
	QoS byte
	// Retain and Dup are the fixed-header flags.
	Retain, Dup bool
	// PacketID is the Packet Identifier; 0 for QoS 0.
	PacketID uint16
	// TopicAlias is the Topic Alias property; 0 means there is none (the
	// value 0 itself is refused with 0x94).
	TopicAlias uint16
	// HasSubscriptionID reports a Subscription Identifier property, which
	// only a server may send [MQTT-3.3.4-6].
	HasSubscriptionID bool
	// PropsStart is the offset in Frame.Raw of the first property byte,
	// after the property-length VBI.
	PropsStart int
	// PropsEnd is the offset in Frame.Raw just after the properties.
	PropsEnd int
	// PayloadStart is the offset in Frame.Raw of the payload, which runs to
	// the end of Raw.
	PayloadStart int
}

// ParsePublish validates a PUBLISH frame and fills p, without allocating
// unless it fails. On top of the fixed header checks it refuses (SPEC 4):
// DUP on QoS 0 [MQTT-3.3.1-2]; a Topic Name that is not UTF-8 or holds
// U+0000 (0x81) [MQTT-1.5.4-1], [MQTT-1.5.4-2] or a wildcard (0x82)
// [MQTT-3.3.2-2]; an empty Topic Name without a Topic Alias (0x82)
// [MQTT-3.3.4]; Topic Alias 0 (0x94) [MQTT-3.3.2-8]; packet id 0 at QoS > 0
// (0x82) [MQTT-2.2.1-3]; and any property the v5 tables forbid, truncate or
// repeat (see checkProps). The payload is not inspected.
//
// Subscription Identifiers are accepted because a broker sends them; a
// client must not [MQTT-3.3.4-6], which the caller checks with
// PublishView.HasSubscriptionID.
func ParsePublish(f Frame, p *PublishView) error {
	if f.Type != packets.PUBLISH {
		return protocolError("not a PUBLISH")
	}
	qos := (f.Flags >> 1) & 3
	dup := f.Flags&0x08 != 0
	switch {
	case qos == 3:
		return malformed("PUBLISH with QoS 3") // [MQTT-3.3.1-4]
	case dup && qos == 0:
		return protocolError("PUBLISH with DUP set at QoS 0") // [MQTT-3.3.1-2]
	}
	hl := len(f.Raw) - len(f.Body)
	if hl < 2 {
		return malformed("frame Body is not a suffix of Raw")
	}
	c := cursor{b: f.Body}
	topic, err := c.field("topic name")
	if err != nil {
		return err
	}
	var id uint16
	if qos > 0 {
		if id, err = c.u16("packet identifier"); err != nil {
			return err
		}
		if id == 0 {
			return protocolError("PUBLISH with packet identifier 0") // [MQTT-2.2.1-3]
		}
	}
	info, start, end, err := c.props(inPublish, "properties")
	if err != nil {
		return err
	}
	if len(topic) == 0 {
		if !info.has(packets.PropTopicAlias) {
			return protocolError("empty topic name without a topic alias")
		}
	} else if err := checkTopicName(topic, "topic name"); err != nil {
		return err
	}
	*p = PublishView{
		Topic:             topic,
		QoS:               qos,
		Retain:            f.Flags&0x01 != 0,
		Dup:               dup,
		PacketID:          id,
		TopicAlias:        info.topicAlias,
		HasSubscriptionID: info.has(packets.PropSubscriptionIdentifier),
		PropsStart:        hl + start,
		PropsEnd:          hl + end,
		PayloadStart:      hl + end,
	}
	return nil
}

// AppendPublishWithTopic appends to dst a re-encoded copy of the PUBLISH in
// f, which ParsePublish has accepted into p, with the Topic Name replaced by
// topic and the Topic Alias property removed: the proxy forwards full topic
// names and never aliases upstream (SPEC 4). The first byte (DUP, QoS,
// RETAIN), the packet id, every other property and the payload are copied
// byte for byte, the payload once. It does not allocate when dst has room.
//
// topic must be at most 65,535 bytes; a longer one cannot be encoded and,
// since truncating it would forward a topic other than the one authorized
// (STYLE §1 item 7), AppendPublishWithTopic panics; so it does if the
// result would exceed the protocol's maximum packet size. A caller that
// must keep to a receiver's limit uses AppendPublishWithTopicWithin.
func AppendPublishWithTopic(dst []byte, f Frame, p *PublishView, topic string) []byte {
	out, size := AppendPublishWithTopicWithin(dst, f, p, topic, maxPacketBytes)
	if size > maxPacketBytes {
		panic("packetcodec: AppendPublishWithTopic: packet larger than the protocol maximum")
	}
	return out
}

// maxPacketBytes is the largest packet the protocol can encode: a 4-byte
// Remaining Length of its maximum and the first byte.
const maxPacketBytes = 1 + 4 + maxRemainingLength

// AppendPublishWithTopicWithin is AppendPublishWithTopic for a receiver
// whose Maximum Packet Size is max: it returns the size of the re-encoded
// packet and appends it only if that is at most max (dst is returned
// unchanged otherwise), laying the packet out once for both.
func AppendPublishWithTopicWithin(dst []byte, f Frame, p *PublishView, topic string, max int) ([]byte, int) {
	if len(topic) > 0xffff {
		panic("packetcodec: AppendPublishWithTopic: " + ErrFieldTooLong.Error())
	}
	props := f.Raw[p.PropsStart:p.PropsEnd]
	alias := -1 // offset of the Topic Alias property in props
	for off := 0; off < len(props); {
		id := props[off]
		if id == packets.PropTopicAlias {
			alias = off
			break
		}
		off += 1 + skipProp(id, props[off+1:])
	}
	plen := len(props)
	if alias >= 0 {
		plen -= 3 // identifier and two-byte value
	}
	payload := f.Raw[p.PayloadStart:]
	rl := 2 + len(topic) + vbiLen(plen) + plen + len(payload)
	if p.QoS > 0 {
		rl += 2
	}
	size := 1 + vbiLen(rl) + rl // vbiLen is 5 past the maximum, so size exceeds maxPacketBytes then
	if size > max {
		return dst, size
	}

	dst = slices.Grow(dst, size)
	dst = append(dst, f.Raw[0])
	dst = appendVBI(dst, rl)
	dst = append(dst, byte(len(topic)>>8), byte(len(topic)))
	dst = append(dst, topic...)
	if p.QoS > 0 {
		dst = append(dst, byte(p.PacketID>>8), byte(p.PacketID))
	}
	dst = appendVBI(dst, plen)
	if alias >= 0 {
		dst = append(dst, props[:alias]...)
		dst = append(dst, props[alias+3:]...)
	} else {
		dst = append(dst, props...)
	}
	return append(dst, payload...), size
}
