package packetcodec

import (
	"encoding/binary"

	"github.com/eclipse/paho.golang/packets"
)

// decodeProps fills p from a property block (without its length prefix)
// that checkProps has accepted, as paho's Properties.Unpack would. paho
// reads every string and binary value through a bytes.Buffer that it then
// grows by another 512 bytes or more, several KiB per CONNECT or AUTH with
// a JWT in it (issue 5: CONNECT rate); this copies each value once.
func decodeProps(b []byte, p *packets.Properties) {
	for len(b) > 0 {
		id, v := b[0], b[1:]
		n := skipProp(id, v)
		v, b = v[:n], v[n:]
		switch id {
		case packets.PropPayloadFormat:
			p.PayloadFormat = ptr(v[0])
		case packets.PropMessageExpiry:
			p.MessageExpiry = ptr(binary.BigEndian.Uint32(v))
		case packets.PropContentType:
			p.ContentType = string(v[2:])
		case packets.PropResponseTopic:
			p.ResponseTopic = string(v[2:])
		case packets.PropCorrelationData:
			p.CorrelationData = ownedBytes(v[2:])
		case packets.PropSubscriptionIdentifier:
			id, _, _ := readVBI(v, "")
			p.SubscriptionIdentifier = ptr(id)
		case packets.PropSessionExpiryInterval:
			p.SessionExpiryInterval = ptr(binary.BigEndian.Uint32(v))
		case packets.PropAssignedClientID:
			p.AssignedClientID = string(v[2:])
		case packets.PropServerKeepAlive:
			p.ServerKeepAlive = ptr(binary.BigEndian.Uint16(v))
		case packets.PropAuthMethod:
			p.AuthMethod = string(v[2:])
		case packets.PropAuthData:
			p.AuthData = ownedBytes(v[2:])
		case packets.PropRequestProblemInfo:
			p.RequestProblemInfo = ptr(v[0])
		case packets.PropWillDelayInterval:
			p.WillDelayInterval = ptr(binary.BigEndian.Uint32(v))
		case packets.PropRequestResponseInfo:
			p.RequestResponseInfo = ptr(v[0])
		case packets.PropResponseInfo:
			p.ResponseInfo = string(v[2:])
		case packets.PropServerReference:
			p.ServerReference = string(v[2:])
		case packets.PropReasonString:
			p.ReasonString = string(v[2:])
		case packets.PropReceiveMaximum:
			p.ReceiveMaximum = ptr(binary.BigEndian.Uint16(v))
		case packets.PropTopicAliasMaximum:
			p.TopicAliasMaximum = ptr(binary.BigEndian.Uint16(v))
		case packets.PropTopicAlias:
			p.TopicAlias = ptr(binary.BigEndian.Uint16(v))
		case packets.PropMaximumQOS:
			p.MaximumQOS = ptr(v[0])
		case packets.PropRetainAvailable:
			p.RetainAvailable = ptr(v[0])
		case packets.PropUser:
			k := 2 + int(binary.BigEndian.Uint16(v))
			p.User = append(p.User, packets.User{Key: string(v[2:k]), Value: string(v[k+2:])})
		case packets.PropMaximumPacketSize:
			p.MaximumPacketSize = ptr(binary.BigEndian.Uint32(v))
		case packets.PropWildcardSubAvailable:
			p.WildcardSubAvailable = ptr(v[0])
		case packets.PropSubIDAvailable:
			p.SubIDAvailable = ptr(v[0])
		case packets.PropSharedSubAvailable:
			p.SharedSubAvailable = ptr(v[0])
		}
	}
}

func ptr[T any](v T) *T { return &v }

// ownedBytes copies b, giving a non-nil slice even when b is empty, as
// paho's readBinary does.
func ownedBytes(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }
