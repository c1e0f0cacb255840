package packetcodec

import (
	"strconv"

	"github.com/eclipse/paho.golang/packets"
)

// Connect is a decoded MQTT v5 CONNECT.
//
// paho re-encodes Will properties with the CONNECT property set and so drops
// the Will's Payload Format Indicator, Message Expiry, Content Type, Response
// Topic and Correlation Data (STYLE §1 item 4). Connect therefore keeps the
// Will property block as received, and EncodeConnect writes it back byte for
// byte.
type Connect struct {
	// Connect holds the decoded fields, including Properties and
	// WillProperties (decoded for inspection). It owns its memory.
	*packets.Connect
	// WillPropertiesRaw is the Will property block as received, without its
	// length prefix; an owned copy, non-nil when WillFlag is set. When
	// non-nil, EncodeConnect writes it instead of WillProperties.
	WillPropertiesRaw []byte
}

// DecodeConnect validates and decodes a CONNECT frame. Everything it keeps
// is copied, since the frame's buffer is reused by the next read.
//
// An MQTT 3.1 or 3.1.1 CONNECT gives ErrProtocolV3, found from the protocol
// name and level alone. Other failures are *Error: an unknown protocol name
// or a truncated header 0x81, another level of "MQTT" 0x84 [MQTT-3.1.2-2],
// the reserved flag 0x81 [MQTT-3.1.2-3], Will QoS 3 0x81 [MQTT-3.1.2-12],
// Will QoS or Retain without the Will flag 0x81 [MQTT-3.1.2-11]
// [MQTT-3.1.2-13], strings that are not UTF-8 or hold U+0000 0x81
// [MQTT-1.5.4-1] [MQTT-1.5.4-2], an empty or wildcard Will Topic 0x82
// [MQTT-3.1.3-11], property violations (see checkProps), Authentication Data
// without Authentication Method 0x82 (§3.1.2.11.10), and bytes
// after the payload 0x81. paho's own io.EOF never escapes.
func DecodeConnect(f Frame) (*Connect, error) {
	if f.Type != packets.CONNECT {
		return nil, protocolError("not a CONNECT")
	}
	if err := checkFixedHeader(f.Type, f.Flags); err != nil {
		return nil, err
	}
	c := &packets.Connect{Properties: &packets.Properties{}}
	l, err := validateConnect(f.Body, c)
	if err != nil {
		return nil, err
	}
	out := &Connect{Connect: c}
	if c.WillFlag {
		out.WillPropertiesRaw = append(make([]byte, 0, l.willEnd-l.willStart), f.Body[l.willStart:l.willEnd]...)
	}
	return out, nil
}

// connectLayout is what validateConnect reports about a valid CONNECT body.
type connectLayout struct {
	willStart, willEnd int // Will property block, when the Will flag is set
}

// CONNECT flag bits [MQTT-3.1.2.3].
const (
	connectReserved   = 0x01
	connectCleanStart = 0x02
	connectWill       = 0x04
	connectWillQoS    = 0x18
	connectWillRetain = 0x20
	connectPassword   = 0x40
	connectUsername   = 0x80
)

// validateConnect checks a CONNECT body without allocating unless it fails.
// With out non-nil it also fills out as paho's Connect.Unpack would, copying
// every string and binary value once (paho copies each through a growing
// bytes.Buffer, several KiB per CONNECT with a JWT), so nothing aliases the
// body.
func validateConnect(body []byte, out *packets.Connect) (connectLayout, error) {
	var l connectLayout
	c := cursor{b: body}
	name, err := c.field("protocol name")
	if err != nil {
		return l, err
	}
	level, err := c.u8("protocol version")
	if err != nil {
		return l, err
	}
	switch {
	case string(name) == "MQTT" && level == 5:
	case string(name) == "MQTT" && level == 4, string(name) == "MQIsdp" && level == 3:
		return l, ErrProtocolV3
	case string(name) == "MQTT" || string(name) == "MQIsdp":
		return l, &Error{Code: codeUnsupportedVersion, Reason: "unsupported protocol version " + strconv.Itoa(int(level))}
	default:
		// [MQTT-3.1.2-1]: not MQTT at all; nothing more to say to it.
		return l, malformed("protocol name is not MQTT")
	}

	flags, err := c.u8("connect flags")
	if err != nil {
		return l, err
	}
	will := flags&connectWill != 0
	switch {
	case flags&connectReserved != 0:
		return l, malformed("reserved connect flag set") // [MQTT-3.1.2-3]
	case flags&connectWillQoS == connectWillQoS:
		return l, malformed("will QoS 3") // [MQTT-3.1.2-12]
	case !will && flags&(connectWillQoS|connectWillRetain) != 0:
		return l, malformed("will QoS or retain without the will flag") // [MQTT-3.1.2-11] [MQTT-3.1.2-13]
	}
	keepAlive, err := c.u16("keep alive")
	if err != nil {
		return l, err
	}
	info, start, end, err := c.props(inConnect, "properties")
	if err != nil {
		return l, err
	}
	if out != nil {
		out.ProtocolName, out.ProtocolVersion, out.KeepAlive = string(name), level, keepAlive
		out.UnpackFlags(flags)
		decodeProps(body[start:end], out.Properties)
	}
	if info.has(packets.PropAuthData) && !info.has(packets.PropAuthMethod) {
		return l, protocolError("authentication data without authentication method")
	}

	id, err := c.field("client identifier")
	if err != nil {
		return l, err
	}
	if err := checkUTF8(id, "client identifier"); err != nil { // [MQTT-3.1.3-4]
		return l, err
	}
	if out != nil {
		out.ClientID = string(id)
	}
	if will {
		if _, l.willStart, l.willEnd, err = c.props(inWill, "will properties"); err != nil {
			return l, err
		}
		topic, err := c.field("will topic")
		if err != nil {
			return l, err
		}
		if err := checkTopicName(topic, "will topic"); err != nil { // [MQTT-3.1.3-11]
			return l, err
		}
		payload, err := c.field("will payload")
		if err != nil {
			return l, err
		}
		if out != nil {
			out.WillProperties = &packets.Properties{}
			decodeProps(body[l.willStart:l.willEnd], out.WillProperties)
			out.WillTopic, out.WillMessage = string(topic), ownedBytes(payload)
		}
	}
	if flags&connectUsername != 0 {
		u, err := c.field("user name")
		if err != nil {
			return l, err
		}
		if err := checkUTF8(u, "user name"); err != nil { // [MQTT-3.1.3-12]
			return l, err
		}
		if out != nil {
			out.Username = string(u)
		}
	}
	if flags&connectPassword != 0 {
		// v5 allows a password without a user name.
		pw, err := c.field("password")
		if err != nil {
			return l, err
		}
		if out != nil {
			out.Password = ownedBytes(pw)
		}
	}
	if c.rest() != 0 {
		return l, malformed("bytes after the end of the CONNECT payload")
	}
	return l, nil
}
