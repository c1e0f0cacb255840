package packetcodec

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/eclipse/paho.golang/packets"
)

// EncodeConnect appends the CONNECT packet c, fixed header included, to dst.
// The proxy edits the decoded fields (ClientID, Username/Password,
// Properties: authentication cleared, Topic Alias Maximum 0) and encodes the
// result for the broker.
//
// The CONNECT properties are c.Properties.Pack(CONNECT). The Will properties
// (when WillFlag is set) are WillPropertiesRaw byte for byte when it is
// non-nil, which paho cannot do (STYLE §1 item 4); otherwise WillProperties
// encoded with the Will property set (Payload Format Indicator, Message
// Expiry, Content Type, Response Topic, Correlation Data, Will Delay, User).
// ProtocolName and ProtocolVersion must be "MQTT" and 5, or empty and 0.
//
// A string or binary field longer than 65,535 bytes gives an error wrapping
// ErrFieldTooLong, never a truncated packet (STYLE §1 item 7). So does any
// result DecodeConnect would refuse (a Will QoS above 2, invalid
// WillPropertiesRaw, a string with U+0000, Authentication Data without a
// method, …) and a packet beyond the protocol's maximum size; on error dst
// is returned unchanged.
func EncodeConnect(dst []byte, c *Connect) ([]byte, error) {
	if c == nil || c.Connect == nil {
		return dst, errors.New("packetcodec: encode CONNECT: nil packet")
	}
	p := c.Connect
	name, version := p.ProtocolName, p.ProtocolVersion
	if name == "" && version == 0 {
		name, version = "MQTT", 5
	}
	if name != "MQTT" || version != 5 {
		return dst, errors.New("packetcodec: encode CONNECT: only MQTT version 5 is encoded")
	}
	if p.WillFlag && p.WillQOS > 2 {
		return dst, fmt.Errorf("packetcodec: encode CONNECT: will QoS %d", p.WillQOS)
	}
	if err := checkPropertiesLen(p.Properties); err != nil {
		return dst, fmt.Errorf("packetcodec: encode CONNECT properties: %w", err)
	}
	if err := checkLen("client identifier", len(p.ClientID)); err != nil {
		return dst, fmt.Errorf("packetcodec: encode CONNECT: %w", err)
	}
	props := p.Properties.Pack(packets.CONNECT)

	var flags byte
	var willProps []byte
	rl := 2 + len(name) + 1 + 1 + 2 + vbiLen(len(props)) + len(props) + 2 + len(p.ClientID)
	if p.CleanStart {
		flags |= connectCleanStart
	}
	if p.WillFlag {
		flags |= connectWill | p.WillQOS<<3
		if p.WillRetain {
			flags |= connectWillRetain
		}
		if c.WillPropertiesRaw != nil {
			if _, err := checkProps(c.WillPropertiesRaw, inWill); err != nil {
				return dst, fmt.Errorf("packetcodec: encode CONNECT will properties: %w", err)
			}
			willProps = c.WillPropertiesRaw
		} else {
			if err := checkPropertiesLen(p.WillProperties); err != nil {
				return dst, fmt.Errorf("packetcodec: encode CONNECT will properties: %w", err)
			}
			willProps = appendWillProperties(nil, p.WillProperties)
		}
		if err := errors.Join(checkLen("will topic", len(p.WillTopic)), checkLen("will payload", len(p.WillMessage))); err != nil {
			return dst, fmt.Errorf("packetcodec: encode CONNECT: %w", err)
		}
		rl += vbiLen(len(willProps)) + len(willProps) + 2 + len(p.WillTopic) + 2 + len(p.WillMessage)
	}
	if p.UsernameFlag {
		flags |= connectUsername
		if err := checkLen("user name", len(p.Username)); err != nil {
			return dst, fmt.Errorf("packetcodec: encode CONNECT: %w", err)
		}
		rl += 2 + len(p.Username)
	}
	if p.PasswordFlag {
		flags |= connectPassword
		if err := checkLen("password", len(p.Password)); err != nil {
			return dst, fmt.Errorf("packetcodec: encode CONNECT: %w", err)
		}
		rl += 2 + len(p.Password)
	}
	if rl > maxRemainingLength || len(props) > maxRemainingLength {
		return dst, errors.New("packetcodec: encode CONNECT: packet larger than the protocol maximum")
	}

	if p.Properties != nil && len(p.Properties.AuthData) > 0 && p.Properties.AuthMethod == "" {
		// paho's Pack treats an empty method as absent, which would leave
		// data without a method: a protocol error (§3.1.2.11.10).
		return dst, errors.New("packetcodec: encode CONNECT: authentication data without authentication method")
	}

	start := len(dst)
	dst = slices.Grow(dst, 1+vbiLen(rl)+rl)
	dst = append(dst, packets.CONNECT<<4)
	dst = appendVBI(dst, rl)
	dst = appendString(dst, name)
	dst = append(dst, version, flags, byte(p.KeepAlive>>8), byte(p.KeepAlive))
	dst = appendVBI(dst, len(props))
	dst = append(dst, props...)
	dst = appendString(dst, p.ClientID)
	if p.WillFlag {
		dst = appendVBI(dst, len(willProps))
		dst = append(dst, willProps...)
		dst = appendString(dst, p.WillTopic)
		dst = appendString(dst, string(p.WillMessage))
	}
	if p.UsernameFlag {
		dst = appendString(dst, p.Username)
	}
	if p.PasswordFlag {
		dst = appendString(dst, string(p.Password))
	}
	// The broker must never receive a CONNECT this package would refuse
	// (e.g. an edited field with U+0000): check the result as if read.
	if _, err := validateConnect(dst[start+1+vbiLen(rl):], nil); err != nil {
		return dst[:start], fmt.Errorf("packetcodec: encode CONNECT: %w", err)
	}
	return dst, nil
}

// appendWillProperties encodes Will properties in the order of MQTT v5
// §3.1.3.2, with paho's convention that an empty string or binary is absent.
func appendWillProperties(dst []byte, p *packets.Properties) []byte {
	if p == nil {
		return dst
	}
	if p.PayloadFormat != nil {
		dst = append(dst, packets.PropPayloadFormat, *p.PayloadFormat)
	}
	if p.MessageExpiry != nil {
		dst = appendUint32(append(dst, packets.PropMessageExpiry), *p.MessageExpiry)
	}
	if p.ContentType != "" {
		dst = appendString(append(dst, packets.PropContentType), p.ContentType)
	}
	if p.ResponseTopic != "" {
		dst = appendString(append(dst, packets.PropResponseTopic), p.ResponseTopic)
	}
	if len(p.CorrelationData) > 0 {
		dst = appendString(append(dst, packets.PropCorrelationData), string(p.CorrelationData))
	}
	if p.WillDelayInterval != nil {
		dst = appendUint32(append(dst, packets.PropWillDelayInterval), *p.WillDelayInterval)
	}
	for _, u := range p.User {
		dst = appendString(appendString(append(dst, packets.PropUser), u.Key), u.Value)
	}
	return dst
}

// appendString appends a two-byte length and s; callers have checked that
// len(s) fits.
func appendString(dst []byte, s string) []byte {
	return append(append(dst, byte(len(s)>>8), byte(len(s))), s...)
}

func appendUint32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func checkLen(field string, n int) error {
	if n > 0xffff {
		return fmt.Errorf("%s of %d bytes: %w", field, n, ErrFieldTooLong)
	}
	return nil
}

// checkPropertiesLen refuses what paho's Properties.Pack would truncate or
// corrupt: strings and binaries over 65,535 bytes, and a Subscription
// Identifier outside 1..268,435,455 (paho's encoder indexes past its 4-byte
// array above that).
func checkPropertiesLen(p *packets.Properties) error {
	if p == nil {
		return nil
	}
	// Errors are collected only when there are some: this runs for every
	// packet the proxy encodes (CONNACK, SUBACK, the upstream CONNECT).
	var errs []error
	check := func(what string, n int) {
		if err := checkLen(what, n); err != nil {
			errs = append(errs, err)
		}
	}
	check("content type", len(p.ContentType))
	check("response topic", len(p.ResponseTopic))
	check("correlation data", len(p.CorrelationData))
	check("assigned client identifier", len(p.AssignedClientID))
	check("authentication method", len(p.AuthMethod))
	check("authentication data", len(p.AuthData))
	check("response information", len(p.ResponseInfo))
	check("server reference", len(p.ServerReference))
	check("reason string", len(p.ReasonString))
	for _, u := range p.User {
		check("user property name", len(u.Key))
		check("user property value", len(u.Value))
	}
	if s := p.SubscriptionIdentifier; s != nil && (*s < 1 || *s > maxRemainingLength) {
		errs = append(errs, fmt.Errorf("subscription identifier %d out of range", *s))
	}
	return errors.Join(errs...)
}

// AppendPacket appends the encoding of a paho packet, fixed header
// included, to dst. It accepts a *packets.ControlPacket or any packet
// struct (*packets.Connack, *packets.Puback, …), and *Connect or
// *packets.Connect, which go through EncodeConnect.
//
// It differs from paho's WriteTo in three ways: it does not mutate the
// packet (ControlPacket.WriteTo overwrites FixedHeader.Flags, STYLE §1 item
// 9); the fixed-header flags come from the packet type and, for PUBLISH,
// its QoS/Duplicate/Retain fields, never from FixedHeader.Flags (paho's
// NewControlPacket(AUTH) sets reserved flag 1); and fields paho would
// truncate give an error wrapping ErrFieldTooLong (STYLE §1 item 7).
func AppendPacket(dst []byte, p io.WriterTo) ([]byte, error) {
	var content packets.Packet
	switch v := p.(type) {
	case *Connect:
		return EncodeConnect(dst, v)
	case *packets.Connect:
		return EncodeConnect(dst, &Connect{Connect: v})
	case *packets.ControlPacket:
		if v == nil || v.Content == nil {
			return dst, errors.New("packetcodec: encode: control packet without content")
		}
		if c, ok := v.Content.(*packets.Connect); ok {
			return EncodeConnect(dst, &Connect{Connect: c})
		}
		content = v.Content
		if t := packetType(content); v.Type != 0 && v.Type != t {
			return dst, fmt.Errorf("packetcodec: encode: header type %d does not match content %s", v.Type, TypeName(t))
		}
	case packets.Packet:
		content = v
	default:
		return dst, fmt.Errorf("packetcodec: encode: unsupported packet %T", p)
	}
	t := packetType(content)
	if t == 0 {
		return dst, fmt.Errorf("packetcodec: encode: unsupported packet %T", content)
	}
	flags, err := checkEncodable(content)
	if err != nil {
		return dst, fmt.Errorf("packetcodec: encode %s: %w", upperName(t), err)
	}
	bufs := content.Buffers()
	rl := 0
	for _, b := range bufs {
		rl += len(b)
	}
	if rl > maxRemainingLength {
		return dst, fmt.Errorf("packetcodec: encode %s: packet larger than the protocol maximum", upperName(t))
	}
	dst = slices.Grow(dst, 1+vbiLen(rl)+rl)
	dst = append(dst, t<<4|flags)
	dst = appendVBI(dst, rl)
	for _, b := range bufs {
		dst = append(dst, b...)
	}
	return dst, nil
}

// packetType maps a paho packet struct to its type, 0 if unknown.
func packetType(p packets.Packet) byte {
	switch p.(type) {
	case *packets.Connect:
		return packets.CONNECT
	case *packets.Connack:
		return packets.CONNACK
	case *packets.Publish:
		return packets.PUBLISH
	case *packets.Puback:
		return packets.PUBACK
	case *packets.Pubrec:
		return packets.PUBREC
	case *packets.Pubrel:
		return packets.PUBREL
	case *packets.Pubcomp:
		return packets.PUBCOMP
	case *packets.Subscribe:
		return packets.SUBSCRIBE
	case *packets.Suback:
		return packets.SUBACK
	case *packets.Unsubscribe:
		return packets.UNSUBSCRIBE
	case *packets.Unsuback:
		return packets.UNSUBACK
	case *packets.Pingreq:
		return packets.PINGREQ
	case *packets.Pingresp:
		return packets.PINGRESP
	case *packets.Disconnect:
		return packets.DISCONNECT
	case *packets.Auth:
		return packets.AUTH
	}
	return 0
}

// checkEncodable refuses what paho's encoders would truncate or corrupt and
// returns the fixed-header flags of the packet.
func checkEncodable(p packets.Packet) (flags byte, err error) {
	var props *packets.Properties
	switch v := p.(type) {
	case *packets.Connack:
		props = v.Properties
	case *packets.Publish:
		if v.QoS > 2 {
			return 0, fmt.Errorf("QoS %d", v.QoS)
		}
		if err := checkLen("topic name", len(v.Topic)); err != nil {
			return 0, err
		}
		flags = v.QoS << 1
		if v.Duplicate {
			flags |= 0x08
		}
		if v.Retain {
			flags |= 0x01
		}
		props = v.Properties
	case *packets.Puback:
		props = v.Properties
	case *packets.Pubrec:
		props = v.Properties
	case *packets.Pubrel:
		flags, props = 0x02, v.Properties
	case *packets.Pubcomp:
		props = v.Properties
	case *packets.Subscribe:
		for _, s := range v.Subscriptions {
			if err := checkLen("topic filter", len(s.Topic)); err != nil {
				return 0, err
			}
		}
		flags, props = 0x02, v.Properties
	case *packets.Suback:
		props = v.Properties
	case *packets.Unsubscribe:
		for _, s := range v.Topics {
			if err := checkLen("topic filter", len(s)); err != nil {
				return 0, err
			}
		}
		flags, props = 0x02, v.Properties
	case *packets.Unsuback:
		props = v.Properties
	case *packets.Disconnect:
		props = v.Properties
	case *packets.Auth:
		props = v.Properties
	}
	return flags, checkPropertiesLen(props)
}
