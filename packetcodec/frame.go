package packetcodec

import (
	"strings"

	"github.com/eclipse/paho.golang/packets"
)

// Protocol limits of the fixed header.
const (
	// maxRemainingLength is the largest value a 4-byte Variable Byte Integer
	// holds [MQTT-1.5.5].
	maxRemainingLength = 268_435_455
	// maxPacketSizeProtocol is the largest packet the protocol can express:
	// one type byte, four length bytes and the body.
	maxPacketSizeProtocol = 1 + 4 + maxRemainingLength
)

// Frame is one MQTT control packet as read from the wire, not yet decoded.
type Frame struct {
	// Type is the packet type, 1..15 (packets.CONNECT etc.).
	Type byte
	// Flags is the low nibble of the first byte.
	Flags byte
	// Raw is the whole packet including the fixed header. When the Frame
	// comes from a Reader it is valid only until the next ReadFrame on that
	// Reader; copy it to keep it.
	Raw []byte
	// Body is Raw after the fixed header (variable header and payload). It
	// is always a suffix of Raw: offsets in PublishView count from Raw.
	Body []byte
}

// ParseFrame splits one complete packet held in memory into a Frame, with
// the same fixed-header checks as Reader.ReadFrame and no size limit beyond
// the protocol's. raw must hold exactly one packet: bytes after it are a
// malformed packet. The Frame aliases raw. It serves tests, fuzzing and
// callers that already hold a packet's bytes.
func ParseFrame(raw []byte) (Frame, error) {
	if len(raw) < 2 {
		return Frame{}, malformed("truncated fixed header")
	}
	t, flags := raw[0]>>4, raw[0]&0x0f
	if err := checkFixedHeader(t, flags); err != nil {
		return Frame{}, err
	}
	rl, n, err := readVBI(raw[1:], "remaining length")
	if err != nil {
		return Frame{}, err
	}
	hl := 1 + n
	switch {
	case len(raw)-hl < rl:
		return Frame{}, malformed("truncated packet")
	case len(raw)-hl > rl:
		return Frame{}, malformed("bytes after the end of the packet")
	}
	return Frame{Type: t, Flags: flags, Raw: raw, Body: raw[hl:]}, nil
}

// checkFixedHeader checks the packet type and the reserved flag bits of the
// first byte, which paho ignores (STYLE §1 item 6).
func checkFixedHeader(t, flags byte) error {
	switch t {
	case 0:
		// Type 0 is reserved [MQTT-2.1.2].
		return malformed("reserved packet type 0")
	case packets.PUBLISH:
		// DUP, QoS and RETAIN live here; QoS 3 is malformed [MQTT-3.3.1-4].
		if flags&0x06 == 0x06 {
			return malformed("PUBLISH with QoS 3")
		}
		return nil
	case packets.PUBREL, packets.SUBSCRIBE, packets.UNSUBSCRIBE:
		// Fixed value 0010 [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1].
		if flags != 0x02 {
			return malformed("reserved fixed header flags of " + upperName(t) + " are not 0010")
		}
		return nil
	}
	// Every other packet type has reserved flags 0000 [MQTT-2.1.3-1].
	if flags != 0 {
		return malformed("reserved fixed header flags of " + upperName(t) + " are not 0000")
	}
	return nil
}

// TypeName returns a fixed lower-case label for a packet type, for logs and
// metric labels (STYLE 14, 38): "connect", "publish", …, and "other" for
// anything outside 1..15, so a label set stays closed.
func TypeName(t byte) string {
	switch t {
	case packets.CONNECT:
		return "connect"
	case packets.CONNACK:
		return "connack"
	case packets.PUBLISH:
		return "publish"
	case packets.PUBACK:
		return "puback"
	case packets.PUBREC:
		return "pubrec"
	case packets.PUBREL:
		return "pubrel"
	case packets.PUBCOMP:
		return "pubcomp"
	case packets.SUBSCRIBE:
		return "subscribe"
	case packets.SUBACK:
		return "suback"
	case packets.UNSUBSCRIBE:
		return "unsubscribe"
	case packets.UNSUBACK:
		return "unsuback"
	case packets.PINGREQ:
		return "pingreq"
	case packets.PINGRESP:
		return "pingresp"
	case packets.DISCONNECT:
		return "disconnect"
	case packets.AUTH:
		return "auth"
	}
	return "other"
}

// upperName is the spec's spelling of a packet type, for reason strings.
func upperName(t byte) string { return strings.ToUpper(TypeName(t)) }

// CheckFromClient rejects packet types only a server may send (CONNACK,
// SUBACK, UNSUBACK, PINGRESP) with a protocol error (SPEC 4), so they are
// never forwarded to the broker. A CONNECT after the first packet and an
// AUTH with a reason other than 0x19 depend on session state and are the
// proxy's to check.
func CheckFromClient(t byte) error {
	switch t {
	case packets.CONNACK, packets.SUBACK, packets.UNSUBACK, packets.PINGRESP:
		return protocolError(upperName(t) + " sent by a client")
	}
	return checkType(t)
}

// CheckFromServer rejects packet types only a client may send (CONNECT,
// SUBSCRIBE, UNSUBSCRIBE, PINGREQ) with a protocol error, so a confused or
// hostile broker cannot inject them towards the client.
func CheckFromServer(t byte) error {
	switch t {
	case packets.CONNECT, packets.SUBSCRIBE, packets.UNSUBSCRIBE, packets.PINGREQ:
		return protocolError(upperName(t) + " sent by a server")
	}
	return checkType(t)
}

func checkType(t byte) error {
	if t == 0 || t > packets.AUTH {
		return malformed("invalid packet type")
	}
	return nil
}

// readVBI decodes a Variable Byte Integer at the start of b, returning its
// value and encoded length. More than 4 bytes, a non-minimal encoding and a
// truncated integer are malformed [MQTT-1.5.5-1].
func readVBI(b []byte, field string) (val, n int, err error) {
	for i := range 4 {
		if i >= len(b) {
			return 0, 0, malformed("truncated " + field)
		}
		c := b[i]
		val |= int(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, 0, malformed(field + " is not minimally encoded")
			}
			return val, i + 1, nil
		}
	}
	return 0, 0, malformed(field + " longer than 4 bytes")
}

// appendVBI appends n (0 ≤ n ≤ maxRemainingLength) as a Variable Byte
// Integer.
func appendVBI(dst []byte, n int) []byte {
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			c |= 0x80
		}
		dst = append(dst, c)
		if n == 0 {
			return dst
		}
	}
}

// vbiLen is the encoded length of n as a Variable Byte Integer.
func vbiLen(n int) int {
	switch {
	case n < 1<<7:
		return 1
	case n < 1<<14:
		return 2
	case n < 1<<21:
		return 3
	}
	return 4
}
