package packetcodec

import (
	"testing"

	"github.com/eclipse/paho.golang/packets"
)

// withLength prefixes b with its length as a Variable Byte Integer.
func withLength(b []byte) []byte {
	return append(appendVBI(nil, len(b)), b...)
}

// packet frames a body under a fixed header byte.
func packet(first byte, body []byte) []byte {
	return append([]byte{first}, withLength(body)...)
}

// everyPropertyPackets are a CONNECT carrying every CONNECT and every Will
// property, and an AUTH carrying every AUTH property: the decoders that
// replace paho's (decodeProps) must agree with it on each one.
func everyPropertyPackets() [][]byte {
	connectProps := []byte{
		packets.PropSessionExpiryInterval, 0, 0, 0x0e, 0x10,
		packets.PropReceiveMaximum, 0, 20,
		packets.PropMaximumPacketSize, 0, 1, 0, 0,
		packets.PropTopicAliasMaximum, 0, 7,
		packets.PropRequestResponseInfo, 1,
		packets.PropRequestProblemInfo, 0,
		packets.PropUser, 0, 1, 'k', 0, 2, 'v', '1',
		packets.PropUser, 0, 1, 'k', 0, 0,
		packets.PropAuthMethod, 0, 10, 'O', 'A', 'U', 'T', 'H', '2', '-', 'J', 'W', 'T',
		packets.PropAuthData, 0, 3, 'e', 'y', 'J',
	}
	willProps := []byte{
		packets.PropWillDelayInterval, 0, 0, 0, 5,
		packets.PropPayloadFormat, 1,
		packets.PropMessageExpiry, 0, 0, 1, 0,
		packets.PropContentType, 0, 4, 't', 'e', 'x', 't',
		packets.PropResponseTopic, 0, 3, 'r', '/', '1',
		packets.PropCorrelationData, 0, 2, 0xca, 0xfe,
		packets.PropUser, 0, 1, 'w', 0, 1, 'x',
	}
	var connect []byte
	connect = append(connect, 0, 4, 'M', 'Q', 'T', 'T', 5, 0xee, 0, 30)
	connect = append(connect, withLength(connectProps)...)
	connect = append(connect, 0, 2, 'c', '1')
	connect = append(connect, withLength(willProps)...)
	connect = append(connect, 0, 4, 'w', '/', 't', '1', 0, 0) // Will Topic, empty Will payload
	connect = append(connect, 0, 1, 'u', 0, 0)                // user name, empty password

	authProps := []byte{
		packets.PropAuthMethod, 0, 10, 'O', 'A', 'U', 'T', 'H', '2', '-', 'J', 'W', 'T',
		packets.PropAuthData, 0, 0,
		packets.PropReasonString, 0, 2, 'o', 'k',
		packets.PropUser, 0, 1, 'a', 0, 1, 'b',
	}
	auth := append([]byte{0x19}, withLength(authProps)...)
	return [][]byte{packet(0x10, connect), packet(0xf0, auth), {0xf0, 0x00}, {0xf0, 0x01, 0x18}}
}

func TestDecodersMatchPaho(t *testing.T) {
	for _, raw := range everyPropertyPackets() {
		checkSameAsPaho(t, mustFrame(t, raw))
	}
}
