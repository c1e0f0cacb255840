package packetcodec

import (
	"bytes"

	"github.com/eclipse/paho.golang/packets"
)

// Validate runs every check this package knows on a frame without decoding
// it into paho structs and without allocating unless it fails. The proxy
// calls it on packets it forwards as their original bytes; Decode,
// DecodeConnect and ParsePublish run the same checks. A CONNECT is checked
// as DecodeConnect does, including ErrProtocolV3.
func Validate(f Frame) error {
	if err := checkFixedHeader(f.Type, f.Flags); err != nil {
		return err
	}
	b := f.Body
	switch f.Type {
	case packets.CONNECT:
		_, err := validateConnect(b, nil)
		return err
	case packets.CONNACK:
		return validateConnack(b)
	case packets.PUBLISH:
		var p PublishView
		return ParsePublish(f, &p)
	case packets.PUBACK, packets.PUBREC, packets.PUBREL, packets.PUBCOMP:
		return validateAck(f.Type, b)
	case packets.SUBSCRIBE:
		return validateSubscribe(b)
	case packets.UNSUBSCRIBE:
		return validateUnsubscribe(b)
	case packets.SUBACK, packets.UNSUBACK:
		return validateSubackLike(f.Type, b)
	case packets.PINGREQ, packets.PINGRESP:
		if len(b) != 0 {
			// paho ignores the body (STYLE §1 item 6).
			return malformed(upperName(f.Type) + " with a body")
		}
		return nil
	case packets.DISCONNECT:
		return validateReasonAndProps(f.Type, b, inDisconnect)
	case packets.AUTH:
		return validateReasonAndProps(f.Type, b, inAuth)
	}
	return malformed("invalid packet type")
}

// Decode validates a frame (see Validate) and decodes it into paho's
// ControlPacket, with Content of the packet's type (*packets.Publish, …).
// The result owns its memory: nothing aliases the frame (paho's Suback and
// Unsuback Reasons would, STYLE §1 item 10, so they are copied).
//
// Forms paho mishandles decode correctly here: DISCONNECT e0 00 is reason
// 0x00 (STYLE §1 item 2) and e0 01 8e a reason without properties; AUTH with
// Remaining Length 0 is reason 0x00; PUBACK/PUBREC/PUBREL/PUBCOMP with
// Remaining Length 2 is reason 0x00 and 3 a reason without properties; a
// CONNACK without a property length (Remaining Length 2, sent by some
// brokers) decodes with no properties.
//
// Re-encoding a decoded PUBLISH with paho keeps only the last Subscription
// Identifier (STYLE §1 item 5): forward Frame.Raw instead. A CONNECT must go
// through DecodeConnect, which keeps its Will properties; Decode refuses it.
func Decode(f Frame) (*packets.ControlPacket, error) {
	if f.Type == packets.CONNECT {
		return nil, protocolError("CONNECT must be decoded with DecodeConnect")
	}
	if err := Validate(f); err != nil {
		return nil, err
	}
	cp := &packets.ControlPacket{FixedHeader: packets.FixedHeader{Type: f.Type, Flags: f.Flags}}
	props := &packets.Properties{}
	b := f.Body
	switch f.Type {
	case packets.CONNACK:
		c := &packets.Connack{Properties: props}
		cp.Content = c
		if len(b) == 2 {
			c.SessionPresent, c.ReasonCode = b[0]&1 != 0, b[1]
			return cp, nil
		}
	case packets.PUBLISH:
		cp.Content = &packets.Publish{
			Properties: props,
			QoS:        (f.Flags >> 1) & 3,
			Duplicate:  f.Flags&0x08 != 0,
			Retain:     f.Flags&0x01 != 0,
		}
	case packets.PUBACK:
		cp.Content = &packets.Puback{Properties: props}
	case packets.PUBREC:
		cp.Content = &packets.Pubrec{Properties: props}
	case packets.PUBREL:
		cp.Content = &packets.Pubrel{Properties: props}
	case packets.PUBCOMP:
		cp.Content = &packets.Pubcomp{Properties: props}
	case packets.SUBSCRIBE:
		cp.Content = &packets.Subscribe{Properties: props}
	case packets.SUBACK:
		cp.Content = &packets.Suback{Properties: props}
	case packets.UNSUBSCRIBE:
		cp.Content = &packets.Unsubscribe{Properties: props}
	case packets.UNSUBACK:
		cp.Content = &packets.Unsuback{Properties: props}
	case packets.PINGREQ:
		cp.Content = &packets.Pingreq{}
		return cp, nil
	case packets.PINGRESP:
		cp.Content = &packets.Pingresp{}
		return cp, nil
	case packets.DISCONNECT:
		d := &packets.Disconnect{Properties: props}
		cp.Content = d
		if len(b) == 0 {
			// e0 00: normal disconnection; paho returns io.EOF here and a
			// proxy would then let the broker publish the Will.
			return cp, nil
		}
	case packets.AUTH:
		// Decoded here, not by paho: its Authentication Data is the
		// re-authentication token, which paho copies wastefully (decodeProps).
		a := &packets.Auth{Properties: props}
		cp.Content = a
		if len(b) > 0 {
			a.ReasonCode = b[0]
		}
		if len(b) > 1 {
			cur := cursor{b: b, off: 1}
			start, end, err := cur.propBlock("properties")
			if err != nil {
				return nil, err
			}
			decodeProps(b[start:end], props)
		}
		return cp, nil
	}
	// Validated above, so paho's Unpack only converts; an error here would
	// be a disagreement between the two and still must not leak io.EOF.
	if err := cp.Content.Unpack(bytes.NewBuffer(b)); err != nil {
		return nil, malformed(upperName(f.Type) + ": " + err.Error())
	}
	switch c := cp.Content.(type) {
	case *packets.Suback:
		c.Reasons = bytes.Clone(c.Reasons)
	case *packets.Unsuback:
		c.Reasons = bytes.Clone(c.Reasons)
	}
	return cp, nil
}

// validateConnack checks a CONNACK: acknowledge flags bits 7-1 reserved
// [MQTT-3.2.2-1], then reason code and properties.
func validateConnack(b []byte) error {
	if len(b) < 2 {
		return malformed("truncated CONNACK")
	}
	if b[0]&0xfe != 0 {
		return malformed("reserved CONNACK acknowledge flags set")
	}
	if len(b) == 2 {
		// No property length. v5 requires one, but the proxy reads the
		// broker's answer leniently: an empty block means the same.
		return nil
	}
	c := cursor{b: b, off: 2}
	if _, _, _, err := c.props(inConnack, "properties"); err != nil {
		return err
	}
	return trailing(&c, packets.CONNACK)
}

// validateAck checks PUBACK, PUBREC, PUBREL and PUBCOMP: packet id, then
// optionally a reason code, then optionally properties [MQTT-3.4.2.1].
func validateAck(t byte, b []byte) error {
	c := cursor{b: b}
	id, err := c.u16("packet identifier")
	if err != nil {
		return err
	}
	if id == 0 {
		return protocolError(upperName(t) + " with packet identifier 0") // [MQTT-2.2.1-3]
	}
	if len(b) <= 3 {
		return nil // Remaining Length 2: success; 3: reason without properties
	}
	c.off = 3
	if _, _, _, err := c.props(inAck, "properties"); err != nil {
		return err
	}
	return trailing(&c, t)
}

// validateReasonAndProps checks DISCONNECT and AUTH: Remaining Length 0
// means reason 0x00, 1 a reason without properties [MQTT-3.14.2.1]
// [MQTT-3.15.2.1].
func validateReasonAndProps(t byte, b []byte, ctx propContext) error {
	if len(b) <= 1 {
		return nil
	}
	c := cursor{b: b, off: 1}
	if _, _, _, err := c.props(ctx, "properties"); err != nil {
		return err
	}
	return trailing(&c, t)
}

// sharedPrefix starts a Shared Subscription filter [MQTT-4.8.2].
const sharedPrefix = "$share/"

// validateSubscribe checks a SUBSCRIBE: non-zero packet id, properties,
// then at least one (filter, options) pair [MQTT-3.8.3-2].
func validateSubscribe(b []byte) error {
	c := cursor{b: b}
	if err := nonZeroID(&c, packets.SUBSCRIBE); err != nil {
		return err
	}
	if _, _, _, err := c.props(inSubscribe, "properties"); err != nil {
		return err
	}
	if c.rest() == 0 {
		return protocolError("SUBSCRIBE without a topic filter") // [MQTT-3.8.3-2]
	}
	for c.rest() > 0 {
		filter, err := c.field("topic filter")
		if err != nil {
			return err
		}
		if err := checkTopicFilter(filter); err != nil {
			return err
		}
		opt, err := c.u8("subscription options")
		if err != nil {
			return err
		}
		switch {
		case opt&0xc0 != 0:
			return malformed("reserved subscription option bits set") // [MQTT-3.8.3-5]
		case opt&0x03 == 0x03:
			return protocolError("subscription with QoS 3") // §3.8.3.1
		case opt&0x30 == 0x30:
			return protocolError("subscription with retain handling 3") // §3.8.3.1
		case opt&0x04 != 0 && len(filter) >= len(sharedPrefix) && string(filter[:len(sharedPrefix)]) == sharedPrefix:
			return protocolError("no local on a shared subscription") // [MQTT-3.8.3-4]
		}
	}
	return nil
}

// validateUnsubscribe checks an UNSUBSCRIBE: non-zero packet id,
// properties, then at least one filter [MQTT-3.10.3-2].
func validateUnsubscribe(b []byte) error {
	c := cursor{b: b}
	if err := nonZeroID(&c, packets.UNSUBSCRIBE); err != nil {
		return err
	}
	if _, _, _, err := c.props(inUnsubscribe, "properties"); err != nil {
		return err
	}
	if c.rest() == 0 {
		return protocolError("UNSUBSCRIBE without a topic filter") // [MQTT-3.10.3-2]
	}
	for c.rest() > 0 {
		filter, err := c.field("topic filter")
		if err != nil {
			return err
		}
		if err := checkTopicFilter(filter); err != nil {
			return err
		}
	}
	return nil
}

// validateSubackLike checks SUBACK and UNSUBACK: packet id, properties and
// at least one reason code, one per filter of the request [MQTT-3.9.3-1]
// [MQTT-3.11.3-1].
func validateSubackLike(t byte, b []byte) error {
	ctx := inSuback
	if t == packets.UNSUBACK {
		ctx = inUnsuback
	}
	c := cursor{b: b}
	if err := nonZeroID(&c, t); err != nil {
		return err
	}
	if _, _, _, err := c.props(ctx, "properties"); err != nil {
		return err
	}
	if c.rest() == 0 {
		return protocolError(upperName(t) + " without a reason code")
	}
	return nil
}

func nonZeroID(c *cursor, t byte) error {
	id, err := c.u16("packet identifier")
	if err != nil {
		return err
	}
	if id == 0 {
		return protocolError(upperName(t) + " with packet identifier 0") // [MQTT-2.2.1-3]
	}
	return nil
}

// trailing refuses bytes after the last field, which paho ignores (STYLE §1
// item 6).
func trailing(c *cursor, t byte) error {
	if c.rest() != 0 {
		return malformed("bytes after the end of the " + upperName(t))
	}
	return nil
}

// PacketID returns the Packet Identifier of a PUBACK, PUBREC, PUBREL,
// PUBCOMP, SUBSCRIBE, SUBACK, UNSUBSCRIBE or UNSUBACK frame (its first two
// body bytes), or of a PUBLISH at QoS 1 or 2. A missing or zero identifier
// is an *Error (0x81, 0x82 [MQTT-2.2.1-3]). For the four acknowledgements,
// which the proxy forwards as raw bytes after this call, the whole packet is
// validated too (reason code, properties, no trailing bytes), without
// allocating.
func PacketID(f Frame) (uint16, error) {
	switch f.Type {
	case packets.PUBACK, packets.PUBREC, packets.PUBREL, packets.PUBCOMP:
		if err := checkFixedHeader(f.Type, f.Flags); err != nil {
			return 0, err
		}
		if err := validateAck(f.Type, f.Body); err != nil {
			return 0, err
		}
	case packets.SUBSCRIBE, packets.SUBACK, packets.UNSUBSCRIBE, packets.UNSUBACK:
		c := cursor{b: f.Body}
		if err := nonZeroID(&c, f.Type); err != nil {
			return 0, err
		}
	case packets.PUBLISH:
		var p PublishView
		if err := ParsePublish(f, &p); err != nil {
			return 0, err
		}
		if p.QoS == 0 {
			return 0, protocolError("PUBLISH at QoS 0 has no packet identifier")
		}
		return p.PacketID, nil
	default:
		return 0, protocolError(upperName(f.Type) + " has no packet identifier")
	}
	return uint16(f.Body[0])<<8 | uint16(f.Body[1]), nil
}
