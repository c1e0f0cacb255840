package packetcodec

import (
	"log/slog"
	"strings"

	"github.com/eclipse/paho.golang/packets"
)

// Summary returns a description of a frame for logs that is safe to print
// (STYLE 13, 29): packet type, flags, size, packet id, reason code, topic
// and QoS of a PUBLISH, and the NAMES of the properties present — never a
// payload, a password, Authentication Data, a client id or a user name.
// It never fails: a malformed frame is described as far as it can be read.
//
// The summary is computed when Summary is called and does not reference the
// frame afterwards, so it may outlive the next ReadFrame. It allocates, so
// on hot paths call it only when the log level is enabled.
func Summary(f Frame) slog.LogValuer {
	s := &frameSummary{typ: f.Type, flags: f.Flags, size: len(f.Raw)}
	b := f.Body
	propsAt := -1 // offset in b of the property length, if any
	switch f.Type {
	case packets.CONNECT:
		// name(2+4) level flags keepalive(2), if it is v5 at all.
		if len(b) >= 10 && string(b[:6]) == "\x00\x04MQTT" {
			s.version, s.hasVersion = b[6], true
			if b[6] == 5 {
				propsAt = 10
			}
		}
	case packets.CONNACK:
		if len(b) >= 2 {
			s.reason, s.hasReason = b[1], true
			propsAt = 2
		}
	case packets.PUBLISH:
		s.qos, s.hasQoS = (f.Flags>>1)&3, true
		if t, n, err := lengthPrefixed(b, ""); err == nil {
			s.topic = strings.ToValidUTF8(string(t), "\uFFFD")
			propsAt = n
			if s.qos > 0 && len(b) >= n+2 {
				s.packetID, s.hasPacketID = uint16(b[n])<<8|uint16(b[n+1]), true
				propsAt = n + 2
			}
		}
	case packets.PUBACK, packets.PUBREC, packets.PUBREL, packets.PUBCOMP:
		if len(b) >= 2 {
			s.packetID, s.hasPacketID = uint16(b[0])<<8|uint16(b[1]), true
			s.reason, s.hasReason = 0, true
		}
		if len(b) >= 3 {
			s.reason = b[2]
			propsAt = 3
		}
	case packets.SUBSCRIBE, packets.SUBACK, packets.UNSUBSCRIBE, packets.UNSUBACK:
		if len(b) >= 2 {
			s.packetID, s.hasPacketID = uint16(b[0])<<8|uint16(b[1]), true
			propsAt = 2
		}
	case packets.DISCONNECT, packets.AUTH:
		s.reason, s.hasReason = 0, true
		if len(b) >= 1 {
			s.reason = b[0]
			propsAt = 1
		}
	}
	if propsAt >= 0 && propsAt < len(b) {
		if n, k, err := readVBI(b[propsAt:], ""); err == nil && n <= len(b)-propsAt-k {
			s.props = propIDs(b[propsAt+k : propsAt+k+n])
		}
	}
	return s
}

// propIDs lists the property identifiers of a block, best effort: it stops
// at the first unknown identifier or truncated value.
func propIDs(b []byte) uint64 {
	var seen uint64
	for off := 0; off < len(b); {
		id := b[off]
		if propName(id) == "" {
			break
		}
		seen |= 1 << id
		rest := b[off+1:]
		n, ok := propValueLen(id, rest)
		if !ok {
			break
		}
		off += 1 + n
	}
	return seen
}

// propValueLen is skipProp with bounds checks, for unvalidated blocks.
func propValueLen(id byte, b []byte) (int, bool) {
	switch propDefs[id].kind {
	case kindString, kindBinary:
		_, n, err := lengthPrefixed(b, "")
		return n, err == nil
	case kindPair:
		_, n, err := lengthPrefixed(b, "")
		if err != nil {
			return 0, false
		}
		_, m, err := lengthPrefixed(b[n:], "")
		return n + m, err == nil
	case kindVBI:
		_, n, err := readVBI(b, "")
		return n, err == nil
	}
	n := skipProp(id, b)
	return n, n <= len(b)
}

// frameSummary is the value behind Summary; it holds no bytes of the frame
// other than the PUBLISH topic, copied.
type frameSummary struct {
	topic       string
	size        int
	props       uint64
	packetID    uint16
	typ, flags  byte
	qos, reason byte
	version     byte
	hasPacketID bool
	hasQoS      bool
	hasReason   bool
	hasVersion  bool
}

// LogValue implements slog.LogValuer with stable snake_case keys (STYLE 28).
func (s *frameSummary) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs, slog.String("type", TypeName(s.typ)), slog.Int("size", s.size))
	if s.flags != 0 {
		attrs = append(attrs, slog.Int("flags", int(s.flags)))
	}
	if s.hasVersion {
		attrs = append(attrs, slog.Int("protocol_version", int(s.version)))
	}
	if s.hasPacketID {
		attrs = append(attrs, slog.Int("packet_id", int(s.packetID)))
	}
	if s.hasReason {
		attrs = append(attrs, slog.Int("reason_code", int(s.reason)))
	}
	if s.hasQoS {
		attrs = append(attrs, slog.String("topic", s.topic), slog.Int("qos", int(s.qos)))
	}
	if s.props != 0 {
		var names []string
		for id := range byte(len(propDefs)) {
			if s.props&(1<<id) != 0 {
				names = append(names, propDefs[id].name)
			}
		}
		attrs = append(attrs, slog.Any("properties", names))
	}
	return slog.GroupValue(attrs...)
}

var _ slog.LogValuer = (*frameSummary)(nil)
