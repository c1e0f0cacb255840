package packetcodec

import (
	"errors"
	"strconv"
)

// Reason codes this package reports. They are the MQTT v5 values shared by
// CONNACK and DISCONNECT, so the caller can send Error.Code unchanged.
const (
	codeMalformed          byte = 0x81 // Malformed Packet
	codeProtocolError      byte = 0x82 // Protocol Error
	codeUnsupportedVersion byte = 0x84 // Unsupported Protocol Version (CONNACK only)
	codeTopicAliasInvalid  byte = 0x94 // Topic Alias invalid (DISCONNECT only)
	codePacketTooLarge     byte = 0x95 // Packet too large
)

// ErrWouldBlock is returned by a non-blocking stream that has nothing to
// read or no room to write, and by a Reader on such a stream
// (Reader.SetNonblocking) that needs more bytes for the next frame. It is
// never wrapped and never sticky: call again once the socket is ready.
var ErrWouldBlock = errors.New("packetcodec: operation would block")

// Error is a wire-level violation carrying the MQTT v5 reason code to send
// in the DISCONNECT (or CONNACK, for a CONNECT) that ends the connection
// (STYLE 16). Reason is a short human-readable cause that never contains
// bytes from the offending packet, so it may be sent as a Reason String.
type Error struct {
	Code   byte
	Reason string
	// Type is the packet type the fixed header announced, where the
	// error is about a whole packet (too large); 0 otherwise.
	Type byte
}

// Error implements error.
func (e *Error) Error() string {
	return codeName(e.Code) + " (0x" + strconv.FormatUint(uint64(e.Code), 16) + "): " + e.Reason
}

// codeName is the spec's name of the reason codes this package produces.
func codeName(c byte) string {
	switch c {
	case codeMalformed:
		return "malformed packet"
	case codeProtocolError:
		return "protocol error"
	case codeUnsupportedVersion:
		return "unsupported protocol version"
	case codeTopicAliasInvalid:
		return "topic alias invalid"
	case codePacketTooLarge:
		return "packet too large"
	}
	return "reason code"
}

func malformed(reason string) *Error { return &Error{Code: codeMalformed, Reason: reason} }

func protocolError(reason string) *Error { return &Error{Code: codeProtocolError, Reason: reason} }

// ErrProtocolV3 is returned by DecodeConnect (and Validate) for an MQTT 3.1
// ("MQIsdp", level 3) or 3.1.1 ("MQTT", level 4) CONNECT. The caller answers
// with V3ConnackUnacceptableProtocol and closes (SPEC 2). It is detected from
// the protocol name and level alone: paho's v5 decoder never sees such a
// packet, because it would misread it (STYLE §1 item 3).
var ErrProtocolV3 = errors.New("packetcodec: MQTT 3.1/3.1.1 CONNECT, only MQTT 5 is supported")

// V3ConnackUnacceptableProtocol is the MQTT 3.1.1 CONNACK with return code
// 0x01 "unacceptable protocol level": packet type 2, remaining length 2,
// acknowledge flags 0, return code 1 [MQTT-3.1.2-2] (3.1.1 numbering). It is
// the only answer a v3 client can parse (SPEC 2). Callers must not modify it.
var V3ConnackUnacceptableProtocol = []byte{0x20, 0x02, 0x00, 0x01}

// ErrFieldTooLong is wrapped by the encoders when a string or binary field
// does not fit its 16-bit length prefix. paho silently truncates such fields
// (STYLE §1 item 7), which could forward a different topic than the one that
// was authorized; this package refuses instead.
var ErrFieldTooLong = errors.New("packetcodec: field longer than 65535 bytes")

var _ error = (*Error)(nil)
