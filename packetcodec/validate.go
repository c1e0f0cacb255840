package packetcodec

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"github.com/eclipse/paho.golang/packets"
)

// This file holds the checks paho skips (STYLE §1 item 6). They work on raw
// bytes and do not allocate unless they fail, so the PUBLISH hot path can
// run them on every packet.

// checkUTF8 checks an MQTT UTF-8 Encoded String: well-formed UTF-8 with no
// surrogates [MQTT-1.5.4-1] and no U+0000 [MQTT-1.5.4-2]. Both make the
// packet malformed.
func checkUTF8(b []byte, field string) error {
	for i, c := range b {
		if c == 0 {
			return malformed(field + " contains U+0000")
		}
		if c >= utf8.RuneSelf {
			// utf8.Valid also rejects encoded surrogates (U+D800..U+DFFF).
			if !utf8.Valid(b[i:]) {
				return malformed(field + " is not well-formed UTF-8")
			}
			if bytes.IndexByte(b[i:], 0) >= 0 {
				return malformed(field + " contains U+0000")
			}
			return nil
		}
	}
	return nil
}

// checkTopicName checks a Topic Name: a UTF-8 string (malformed otherwise)
// that is not empty [MQTT-4.7.3-1] and holds no wildcard [MQTT-3.3.2-2]
// (protocol errors). The proxy authorizes exactly these bytes, so anything
// a broker might read differently is refused here (SPEC 4).
func checkTopicName(b []byte, field string) error {
	if len(b) == 0 {
		return protocolError(field + " is empty")
	}
	ascii := true
	for _, c := range b {
		switch {
		case c == 0:
			return malformed(field + " contains U+0000")
		case c == '+' || c == '#':
			return protocolError(field + " contains a wildcard")
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(b) {
		return malformed(field + " is not well-formed UTF-8")
	}
	return nil
}

// checkTopicFilter checks a Topic Filter as a string: UTF-8 and at least one
// character [MQTT-4.7.3-1]. Wildcard placement is the authorizer's business
// (authz/topic), which refuses filters it cannot reason about.
func checkTopicFilter(b []byte) error {
	if len(b) == 0 {
		return protocolError("topic filter is empty")
	}
	return checkUTF8(b, "topic filter")
}

// propContext says where a property block sits; each property is allowed in
// a set of contexts (MQTT v5 table 2-4). Will Properties are a context of
// their own: paho conflates them with CONNECT properties (STYLE §1 item 4).
type propContext uint16

const (
	inConnect propContext = 1 << iota
	inWill
	inConnack
	inPublish
	inAck // PUBACK, PUBREC, PUBREL, PUBCOMP
	inSubscribe
	inSuback
	inUnsubscribe
	inUnsuback
	inDisconnect
	inAuth
)

// propKind is the data type of a property value [MQTT-2.2.2.2].
type propKind uint8

const (
	kindByte propKind = iota + 1
	kindUint16
	kindUint32
	kindVBI
	kindString
	kindBinary
	kindPair
)

type propDef struct {
	name string // for Summary and reason strings
	kind propKind
	in   propContext
}

// propDefs is the property table of MQTT v5 section 2.2.2.2, indexed by
// identifier. It is never written.
var propDefs = [...]propDef{
	packets.PropPayloadFormat:          {"payload_format_indicator", kindByte, inPublish | inWill},
	packets.PropMessageExpiry:          {"message_expiry_interval", kindUint32, inPublish | inWill},
	packets.PropContentType:            {"content_type", kindString, inPublish | inWill},
	packets.PropResponseTopic:          {"response_topic", kindString, inPublish | inWill},
	packets.PropCorrelationData:        {"correlation_data", kindBinary, inPublish | inWill},
	packets.PropSubscriptionIdentifier: {"subscription_identifier", kindVBI, inPublish | inSubscribe},
	packets.PropSessionExpiryInterval:  {"session_expiry_interval", kindUint32, inConnect | inConnack | inDisconnect},
	packets.PropAssignedClientID:       {"assigned_client_identifier", kindString, inConnack},
	packets.PropServerKeepAlive:        {"server_keep_alive", kindUint16, inConnack},
	packets.PropAuthMethod:             {"authentication_method", kindString, inConnect | inConnack | inAuth},
	packets.PropAuthData:               {"authentication_data", kindBinary, inConnect | inConnack | inAuth},
	packets.PropRequestProblemInfo:     {"request_problem_information", kindByte, inConnect},
	packets.PropWillDelayInterval:      {"will_delay_interval", kindUint32, inWill},
	packets.PropRequestResponseInfo:    {"request_response_information", kindByte, inConnect},
	packets.PropResponseInfo:           {"response_information", kindString, inConnack},
	packets.PropServerReference:        {"server_reference", kindString, inConnack | inDisconnect},
	packets.PropReasonString:           {"reason_string", kindString, inConnack | inAck | inSuback | inUnsuback | inDisconnect | inAuth},
	packets.PropReceiveMaximum:         {"receive_maximum", kindUint16, inConnect | inConnack},
	packets.PropTopicAliasMaximum:      {"topic_alias_maximum", kindUint16, inConnect | inConnack},
	packets.PropTopicAlias:             {"topic_alias", kindUint16, inPublish},
	packets.PropMaximumQOS:             {"maximum_qos", kindByte, inConnack},
	packets.PropRetainAvailable:        {"retain_available", kindByte, inConnack},
	packets.PropUser:                   {"user_property", kindPair, inConnect | inWill | inConnack | inPublish | inAck | inSubscribe | inSuback | inUnsubscribe | inUnsuback | inDisconnect | inAuth},
	packets.PropMaximumPacketSize:      {"maximum_packet_size", kindUint32, inConnect | inConnack},
	packets.PropWildcardSubAvailable:   {"wildcard_subscription_available", kindByte, inConnack},
	packets.PropSubIDAvailable:         {"subscription_identifier_available", kindByte, inConnack},
	packets.PropSharedSubAvailable:     {"shared_subscription_available", kindByte, inConnack},
}

// propName returns the property's label, or "" for an unknown identifier.
func propName(id byte) string {
	if int(id) < len(propDefs) {
		return propDefs[id].name
	}
	return ""
}

// propInfo is what checkProps learned about a valid block.
type propInfo struct {
	seen       uint64 // bit id set for each property identifier present
	topicAlias uint16 // value of the Topic Alias, if seen
}

func (p propInfo) has(id byte) bool { return p.seen&(1<<id) != 0 }

// checkProps validates a property block (without its length prefix) for
// context ctx: every identifier known and allowed there (malformed
// otherwise [MQTT-2.2.2-2]), every value inside the block (malformed), no
// duplicate of a single-instance property (protocol error; only User
// Property, and Subscription Identifier in a PUBLISH, may repeat), UTF-8 in
// string values, and the value ranges the spec calls protocol errors.
func checkProps(b []byte, ctx propContext) (propInfo, error) {
	var info propInfo
	for off := 0; off < len(b); {
		id := b[off]
		off++
		// All v5 property identifiers are one byte, below 0x80 [MQTT-2.2.2.2].
		if int(id) >= len(propDefs) || propDefs[id].name == "" || propDefs[id].in&ctx == 0 {
			return info, malformed(fmt.Sprintf("property 0x%02x not allowed here", id))
		}
		def := &propDefs[id]
		bit := uint64(1) << id
		if info.seen&bit != 0 && id != packets.PropUser && (id != packets.PropSubscriptionIdentifier || ctx != inPublish) {
			return info, protocolError("duplicate property " + def.name)
		}
		info.seen |= bit

		rest := b[off:]
		switch def.kind {
		case kindByte:
			if len(rest) < 1 {
				return info, malformed("truncated property " + def.name)
			}
			// Every byte-valued property of v5 is 0 or 1; any other value
			// is a protocol error (e.g. [MQTT-3.3.2.3.2], [MQTT-3.2.2.3.4]).
			if rest[0] > 1 {
				return info, protocolError("property " + def.name + " is not 0 or 1")
			}
			off++
		case kindUint16:
			if len(rest) < 2 {
				return info, malformed("truncated property " + def.name)
			}
			v := uint16(rest[0])<<8 | uint16(rest[1])
			switch {
			case v == 0 && id == packets.PropTopicAlias:
				// [MQTT-3.3.2-8]; answered with 0x94 (SPEC 4).
				return info, &Error{Code: codeTopicAliasInvalid, Reason: "topic alias 0"}
			case v == 0 && id == packets.PropReceiveMaximum:
				return info, protocolError("receive maximum 0")
			}
			if id == packets.PropTopicAlias {
				info.topicAlias = v
			}
			off += 2
		case kindUint32:
			if len(rest) < 4 {
				return info, malformed("truncated property " + def.name)
			}
			if id == packets.PropMaximumPacketSize && rest[0]|rest[1]|rest[2]|rest[3] == 0 {
				return info, protocolError("maximum packet size 0")
			}
			off += 4
		case kindVBI:
			v, n, err := readVBI(rest, "subscription identifier") // the only VBI property
			if err != nil {
				return info, err
			}
			if v == 0 {
				// Subscription Identifier is 1..268,435,455 [MQTT-3.8.2.1.2].
				return info, protocolError("subscription identifier 0")
			}
			off += n
		case kindString:
			s, n, err := lengthPrefixed(rest, def.name)
			if err != nil {
				return info, err
			}
			if id == packets.PropResponseTopic {
				// A Topic Name, so no wildcards [MQTT-3.3.2-14].
				err = checkTopicName(s, def.name)
			} else {
				err = checkUTF8(s, def.name)
			}
			if err != nil {
				return info, err
			}
			off += n
		case kindBinary:
			_, n, err := lengthPrefixed(rest, def.name)
			if err != nil {
				return info, err
			}
			off += n
		case kindPair:
			k, n, err := lengthPrefixed(rest, "user property name")
			if err != nil {
				return info, err
			}
			if err := checkUTF8(k, "user property name"); err != nil {
				return info, err
			}
			v, m, err := lengthPrefixed(rest[n:], "user property value")
			if err != nil {
				return info, err
			}
			if err := checkUTF8(v, "user property value"); err != nil {
				return info, err
			}
			off += n + m
		}
	}
	return info, nil
}

// skipProp returns the encoded length of the value of property id at the
// start of b, for a block checkProps has accepted.
func skipProp(id byte, b []byte) int {
	switch propDefs[id].kind {
	case kindByte:
		return 1
	case kindUint16:
		return 2
	case kindUint32:
		return 4
	case kindVBI:
		_, n, _ := readVBI(b, "")
		return n
	case kindString, kindBinary:
		return 2 + (int(b[0])<<8 | int(b[1]))
	case kindPair:
		n := 2 + (int(b[0])<<8 | int(b[1]))
		return n + 2 + (int(b[n])<<8 | int(b[n+1]))
	}
	return len(b)
}

// lengthPrefixed reads a two-byte length and that many bytes (a UTF-8
// string or binary data [MQTT-1.5.4], [MQTT-1.5.6]); it returns the bytes
// and the total consumed.
func lengthPrefixed(b []byte, field string) ([]byte, int, error) {
	if len(b) < 2 {
		return nil, 0, malformed("truncated " + field)
	}
	n := int(b[0])<<8 | int(b[1])
	if len(b)-2 < n {
		return nil, 0, malformed("truncated " + field)
	}
	return b[2 : 2+n], 2 + n, nil
}

// cursor walks a packet body with bounds checks; every read past the end is
// a malformed packet, never io.EOF (STYLE 18).
type cursor struct {
	b   []byte
	off int
}

func (c *cursor) rest() int { return len(c.b) - c.off }

func (c *cursor) u8(field string) (byte, error) {
	if c.off >= len(c.b) {
		return 0, malformed("truncated " + field)
	}
	v := c.b[c.off]
	c.off++
	return v, nil
}

func (c *cursor) u16(field string) (uint16, error) {
	if c.rest() < 2 {
		return 0, malformed("truncated " + field)
	}
	v := uint16(c.b[c.off])<<8 | uint16(c.b[c.off+1])
	c.off += 2
	return v, nil
}

// field reads a length-prefixed string or binary value.
func (c *cursor) field(name string) ([]byte, error) {
	v, n, err := lengthPrefixed(c.b[c.off:], name)
	c.off += n
	return v, err
}

// propBlock reads a property-length VBI and the block it announces, which
// must lie inside the packet (paho's Next silently returns less, STYLE §1
// item 6). It returns the block's bounds in c.b, its content unchecked.
func (c *cursor) propBlock(field string) (start, end int, err error) {
	n, k, err := readVBI(c.b[c.off:], "property length") // constant: no concatenation on the hot path
	if err != nil {
		return 0, 0, err
	}
	start = c.off + k
	if len(c.b)-start < n {
		return 0, 0, malformed(field + " run past the end of the packet")
	}
	c.off = start + n
	return start, c.off, nil
}

// props reads a property block with propBlock and validates it for ctx.
func (c *cursor) props(ctx propContext, field string) (info propInfo, start, end int, err error) {
	if start, end, err = c.propBlock(field); err != nil {
		return info, 0, 0, err
	}
	info, err = checkProps(c.b[start:end], ctx)
	return info, start, end, err
}
