package packetcodec

// Annotated golden packet vectors (STYLE 41, mochi tpackets.go style): one
// comment per field. TestVectors runs each through Reader.ReadFrame and the
// matching decoder; FuzzReadFrame is seeded from them.

// vector is one packet on the wire and the outcome the codec must give.
type vector struct {
	name string
	ref  string // the normative statement or SPEC section checked
	raw  []byte
	// code is the reason code of the expected *Error; 0 means valid.
	code byte
	// v3 expects ErrProtocolV3.
	v3 bool
	// framing says the error comes from ReadFrame; otherwise the frame
	// must read cleanly (which also proves the vector's length is right)
	// and the error comes from decoding.
	framing bool
	// connectRoundTrip: DecodeConnect → EncodeConnect gives raw back.
	connectRoundTrip bool
}

var vectors = []vector{
	// ---------------------------------------------------------------- framing
	{
		name: "remaining length of 5 bytes", ref: "[MQTT-1.5.5-1] SPEC 4", code: 0x81, framing: true,
		raw: []byte{
			0x30,                         // PUBLISH, QoS 0
			0xff, 0xff, 0xff, 0xff, 0x7f, // remaining length: 5 bytes, continuation on the 4th
		},
	},
	{
		name: "remaining length not minimally encoded", ref: "[MQTT-1.5.5-1]", code: 0x81, framing: true,
		raw: []byte{
			0xc0,       // PINGREQ
			0x80, 0x00, // remaining length 0 in two bytes
		},
	},
	{
		name: "header declaring 268,435,455 bytes", ref: "SPEC 4 STYLE §1.1", code: 0x95, framing: true,
		raw: []byte{
			0x30,                   // PUBLISH, QoS 0
			0xff, 0xff, 0xff, 0x7f, // remaining length 268,435,455
		},
	},
	{
		name: "truncated body", ref: "STYLE 18", code: 0x81, framing: true,
		raw: []byte{
			0x30,       // PUBLISH, QoS 0
			0x0a,       // remaining length 10
			0x00, 0x03, // topic length 3
			'a', '/', // two of the three topic bytes, then end of stream
		},
	},
	{
		name: "truncated remaining length", ref: "STYLE 18", code: 0x81, framing: true,
		raw: []byte{
			0x30, // PUBLISH, QoS 0
			0x80, // remaining length continues, then end of stream
		},
	},
	{
		name: "truncated after first byte", ref: "STYLE 18", code: 0x81, framing: true,
		raw: []byte{
			0xc0, // PINGREQ, then end of stream
		},
	},
	{
		name: "packet type 0", ref: "[MQTT-2.1.2]", code: 0x81, framing: true,
		raw: []byte{
			0x00, // reserved type 0
			0x00, // remaining length 0
		},
	},
	// Reserved fixed-header flags, one per type [MQTT-2.1.3-1].
	{name: "CONNECT flags 0001", ref: "[MQTT-2.1.3-1]", code: 0x81, framing: true, raw: []byte{0x11 /* CONNECT, flags 0001 */, 0x00 /* remaining length 0 */}},
	{name: "CONNACK flags 0001", ref: "[MQTT-2.1.3-1]", code: 0x81, framing: true, raw: []byte{0x21 /* CONNACK, flags 0001 */, 0x00}},
	{name: "PUBACK flags 0010", ref: "[MQTT-2.1.3-1]", code: 0x81, framing: true, raw: []byte{0x42 /* PUBACK, flags 0010 */, 0x02, 0x00, 0x01}},
	{name: "PUBREC flags 0001", ref: "[MQTT-2.1.3-1]", code: 0x81, framing: true, raw: []byte{0x51 /* PUBREC, flags 0001 */, 0x02, 0x00, 0x01}},
	{name: "PUBREL flags 0000", ref: "[MQTT-3.6.1-1]", code: 0x81, framing: true, raw: []byte{0x60 /* PUBREL, flags 0000 */, 0x02, 0x00, 0x01}},
	{name: "PUBCOMP flags 0010", ref: "[MQTT-2.1.3-1]", code: 0x81, framing: true, raw: []byte{0x72 /* PUBCOMP, flags 0010 */, 0x02, 0x00, 0x01}},
	{name: "SUBSCRIBE flags 0000", ref: "[MQTT-3.8.1-1] STYLE §1.6", code: 0x81, framing: true, raw: []byte{0x80 /* SUBSCRIBE, flags 0000 */, 0x00}},
	{name: "SUBACK flags 0010", ref: "[MQTT-2.1.3-1]", code: 0x81, framing: true, raw: []byte{0x92 /* SUBACK, flags 0010 */, 0x00}},
	{name: "UNSUBSCRIBE flags 0011", ref: "[MQTT-3.10.1-1]", code: 0x81, framing: true, raw: []byte{0xa3 /* UNSUBSCRIBE, flags 0011 */, 0x00}},
	{name: "UNSUBACK flags 1000", ref: "[MQTT-2.1.3-1]", code: 0x81, framing: true, raw: []byte{0xb8 /* UNSUBACK, flags 1000 */, 0x00}},
	{name: "PINGREQ flags 0001", ref: "[MQTT-2.1.3-1]", code: 0x81, framing: true, raw: []byte{0xc1 /* PINGREQ, flags 0001 */, 0x00}},
	{name: "PINGRESP flags 0100", ref: "[MQTT-2.1.3-1]", code: 0x81, framing: true, raw: []byte{0xd4 /* PINGRESP, flags 0100 */, 0x00}},
	{name: "DISCONNECT flags 0001", ref: "[MQTT-2.1.3-1]", code: 0x81, framing: true, raw: []byte{0xe1 /* DISCONNECT, flags 0001 */, 0x00}},
	{name: "AUTH flags 0001", ref: "[MQTT-2.1.3-1]", code: 0x81, framing: true, raw: []byte{0xf1 /* AUTH, flags 0001 (paho's NewControlPacket default) */, 0x00}},
	{
		name: "PUBLISH QoS 3", ref: "[MQTT-3.3.1-4] STYLE §1.6", code: 0x81, framing: true,
		raw: []byte{
			0x36,       // PUBLISH, QoS bits 11
			0x06,       // remaining length 6
			0x00, 0x01, // topic length 1
			'a',        // topic
			0x00, 0x01, // packet id 1
			0x00, // properties length 0
		},
	},

	// ---------------------------------------------------------------- CONNECT
	{
		name: "CONNECT minimal", ref: "[MQTT-3.1]", connectRoundTrip: true,
		raw: []byte{
			0x10,                           // CONNECT
			0x0d,                           // remaining length 13
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x02,       // flags: clean start
			0x00, 0x3c, // keep alive 60
			0x00,       // properties length 0
			0x00, 0x00, // client id "" (server assigned)
		},
	},
	{
		name: "CONNECT with Will properties, auth, user name and password", ref: "STYLE §1.4 SPEC 2", connectRoundTrip: true,
		raw: []byte{
			0x10,                           // CONNECT
			0x78,                           // remaining length 120
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0xee,       // flags: user name, password, will retain, will QoS 1, will, clean start
			0x00, 0x1e, // keep alive 30
			0x24,             // properties length 36 (in paho's Pack order, so the round trip is byte-identical)
			0x21, 0x00, 0x0a, // receive maximum 10
			0x11, 0x00, 0x00, 0x0e, 0x10, // session expiry interval 3600
			0x15, 0x00, 0x0a, 'O', 'A', 'U', 'T', 'H', '2', '-', 'J', 'W', 'T', // authentication method
			0x16, 0x00, 0x05, 'a', '.', 'b', '.', 'c', // authentication data
			0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property k=v
			0x00, 0x02, 'c', '1', // client id "c1"
			0x2d,       // will properties length 45
			0x01, 0x01, // payload format indicator 1 (UTF-8)
			0x02, 0x00, 0x00, 0x00, 0x3c, // message expiry interval 60
			0x03, 0x00, 0x0a, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i', 'n', // content type
			0x08, 0x00, 0x05, 'r', 'e', 'p', 'l', 'y', // response topic
			0x09, 0x00, 0x02, 0xca, 0xfe, // correlation data
			0x18, 0x00, 0x00, 0x00, 0x05, // will delay interval 5
			0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b', // user property a=b
			0x00, 0x04, 'w', 'i', 'l', 'l', // will topic
			0x00, 0x03, 'b', 'y', 'e', // will payload
			0x00, 0x04, 'u', 's', 'e', 'r', // user name
			0x00, 0x04, 'p', 'a', 's', 's', // password
		},
	},
	{
		name: "CONNECT password without user name", ref: "[MQTT-3.1.2.9] v5 allows it", connectRoundTrip: true,
		raw: []byte{
			0x10,                           // CONNECT
			0x12,                           // remaining length 18
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x40,       // flags: password
			0x00, 0x00, // keep alive 0
			0x00,            // properties length 0
			0x00, 0x01, 'c', // client id "c"
			0x00, 0x02, 'p', 'w', // password
		},
	},
	{
		name: "CONNECT MQTT 3.1", ref: "SPEC 2", v3: true,
		raw: []byte{
			0x10,                                     // CONNECT
			0x10,                                     // remaining length 16
			0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', // protocol name
			0x03,       // protocol level 3
			0x02,       // flags: clean session
			0x00, 0x3c, // keep alive 60
			0x00, 0x02, 'c', '1', // client id (no properties in v3)
		},
	},
	{
		name: "CONNECT MQTT 3.1.1", ref: "SPEC 2", v3: true,
		raw: []byte{
			0x10,                           // CONNECT
			0x0e,                           // remaining length 14
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x04,       // protocol level 4
			0x02,       // flags: clean session
			0x00, 0x3c, // keep alive 60
			0x00, 0x02, 'c', '1', // client id
		},
	},
	{
		name: "CONNECT MQTT 3.1.1 with will and credentials is still v3", ref: "SPEC 2", v3: true,
		raw: []byte{
			0x10,                           // CONNECT
			0x18,                           // remaining length 24
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x04,       // protocol level 4
			0xc6,       // flags: user name, password, will, clean session
			0x00, 0x3c, // keep alive 60
			0x00, 0x01, 'c', // client id
			0x00, 0x01, 't', // will topic (v3: no will properties)
			0x00, 0x00, // will message
			0x00, 0x01, 'u', // user name
			0x00, 0x01, 'p', // password
		},
	},
	{
		name: "CONNECT protocol level 6", ref: "[MQTT-3.1.2-2]", code: 0x84,
		raw: []byte{
			0x10,                           // CONNECT
			0x0d,                           // remaining length 13
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x06,       // protocol version 6
			0x02,       // flags
			0x00, 0x3c, // keep alive
			0x00,       // properties length
			0x00, 0x00, // client id
		},
	},
	{
		name: "CONNECT protocol name not MQTT", ref: "[MQTT-3.1.2-1]", code: 0x81,
		raw: []byte{
			0x10,                           // CONNECT
			0x0d,                           // remaining length 13
			0x00, 0x04, 'M', 'Q', 'T', 'X', // protocol name "MQTX"
			0x05,       // protocol version 5
			0x02,       // flags
			0x00, 0x3c, // keep alive
			0x00,       // properties length
			0x00, 0x00, // client id
		},
	},
	{
		name: "CONNECT truncated protocol name", ref: "STYLE §1.3", code: 0x81,
		raw: []byte{
			0x10,       // CONNECT
			0x03,       // remaining length 3
			0x00, 0x04, // protocol name length 4
			'M', // one byte of it
		},
	},
	{
		name: "CONNECT reserved flag", ref: "[MQTT-3.1.2-3] STYLE §1.6", code: 0x81,
		raw: []byte{
			0x10,                           // CONNECT
			0x0d,                           // remaining length 13
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x03,       // flags: clean start + reserved bit 0
			0x00, 0x3c, // keep alive
			0x00,       // properties length
			0x00, 0x00, // client id
		},
	},
	{
		name: "CONNECT will QoS 3", ref: "[MQTT-3.1.2-12]", code: 0x81,
		raw: []byte{
			0x10,                           // CONNECT
			0x13,                           // remaining length 19
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x1c,       // flags: will QoS 3, will
			0x00, 0x3c, // keep alive
			0x00,       // properties length
			0x00, 0x00, // client id
			0x00,            // will properties length
			0x00, 0x01, 't', // will topic
			0x00, 0x00, // will payload
		},
	},
	{
		name: "CONNECT will QoS without will flag", ref: "[MQTT-3.1.2-11]", code: 0x81,
		raw: []byte{
			0x10,                           // CONNECT
			0x0d,                           // remaining length 13
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x08,       // flags: will QoS 1, no will
			0x00, 0x3c, // keep alive
			0x00,       // properties length
			0x00, 0x00, // client id
		},
	},
	{
		name: "CONNECT will retain without will flag", ref: "[MQTT-3.1.2-13]", code: 0x81,
		raw: []byte{
			0x10,                           // CONNECT
			0x0d,                           // remaining length 13
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x20,       // flags: will retain, no will
			0x00, 0x3c, // keep alive
			0x00,       // properties length
			0x00, 0x00, // client id
		},
	},
	{
		name: "CONNECT will topic with wildcard", ref: "[MQTT-3.1.3-11] SPEC 4", code: 0x82,
		raw: []byte{
			0x10,                           // CONNECT
			0x15,                           // remaining length 21
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x04,       // flags: will, QoS 0
			0x00, 0x3c, // keep alive
			0x00,       // properties length
			0x00, 0x00, // client id
			0x00,                      // will properties length
			0x00, 0x03, 'a', '/', '#', // will topic "a/#"
			0x00, 0x00, // will payload
		},
	},
	{
		name: "CONNECT client id with U+0000", ref: "[MQTT-1.5.4-2]", code: 0x81,
		raw: []byte{
			0x10,                           // CONNECT
			0x0f,                           // remaining length 15
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x02,       // flags
			0x00, 0x3c, // keep alive
			0x00,                  // properties length
			0x00, 0x02, 'c', 0x00, // client id "c\x00"
		},
	},
	{
		name: "CONNECT user name not UTF-8", ref: "[MQTT-1.5.4-1]", code: 0x81,
		raw: []byte{
			0x10,                           // CONNECT
			0x11,                           // remaining length 17
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x80,       // flags: user name
			0x00, 0x3c, // keep alive
			0x00,       // properties length
			0x00, 0x00, // client id
			0x00, 0x02, 0xc3, 0x28, // user name: invalid 2-byte sequence
		},
	},
	{
		name: "CONNECT duplicate session expiry", ref: "[MQTT-2.2.2] STYLE §1.6", code: 0x82,
		raw: []byte{
			0x10,                           // CONNECT
			0x17,                           // remaining length 23
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x02,       // flags
			0x00, 0x3c, // keep alive
			0x0a,                         // properties length 10
			0x11, 0x00, 0x00, 0x00, 0x01, // session expiry interval 1
			0x11, 0x00, 0x00, 0x00, 0x02, // session expiry interval 2 again
			0x00, 0x00, // client id
		},
	},
	{
		name: "CONNECT payload format indicator in CONNECT properties", ref: "[MQTT-2.2.2-2]", code: 0x81,
		raw: []byte{
			0x10,                           // CONNECT
			0x0f,                           // remaining length 15
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x02,       // flags
			0x00, 0x3c, // keep alive
			0x02,       // properties length 2
			0x01, 0x01, // payload format indicator: a Will property only
			0x00, 0x00, // client id
		},
	},
	{
		name: "CONNECT session expiry in Will properties", ref: "[MQTT-2.2.2-2] STYLE §1.4", code: 0x81,
		raw: []byte{
			0x10,                           // CONNECT
			0x18,                           // remaining length 24
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x04,       // flags: will
			0x00, 0x3c, // keep alive
			0x00,       // properties length
			0x00, 0x00, // client id
			0x05,                         // will properties length 5
			0x11, 0x00, 0x00, 0x00, 0x01, // session expiry: a CONNECT property only
			0x00, 0x01, 't', // will topic
			0x00, 0x00, // will payload
		},
	},
	{
		name: "CONNECT authentication data without method", ref: "[MQTT-3.1.2.11.10]", code: 0x82,
		raw: []byte{
			0x10,                           // CONNECT
			0x11,                           // remaining length 17
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x02,       // flags
			0x00, 0x3c, // keep alive
			0x04,                  // properties length 4
			0x16, 0x00, 0x01, 'x', // authentication data
			0x00, 0x00, // client id
		},
	},
	{
		name: "CONNECT receive maximum 0", ref: "[MQTT-3.1.2.11.3]", code: 0x82,
		raw: []byte{
			0x10,                           // CONNECT
			0x10,                           // remaining length 16
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x02,       // flags
			0x00, 0x3c, // keep alive
			0x03,             // properties length 3
			0x21, 0x00, 0x00, // receive maximum 0
			0x00, 0x00, // client id
		},
	},
	{
		name: "CONNECT properties run past the end", ref: "STYLE §1.6 (properties.go:594)", code: 0x81,
		raw: []byte{
			0x10,                           // CONNECT
			0x0f,                           // remaining length 15
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x02,       // flags
			0x00, 0x3c, // keep alive
			0x20,             // properties length 32, far past the end
			0x21, 0x00, 0x0a, // receive maximum 10
			0x00, // and nothing more
		},
	},
	{
		name: "CONNECT trailing bytes", ref: "STYLE §1.6", code: 0x81,
		raw: []byte{
			0x10,                           // CONNECT
			0x0e,                           // remaining length 14
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x02,       // flags
			0x00, 0x3c, // keep alive
			0x00,       // properties length
			0x00, 0x00, // client id
			0xff, // a byte after the payload
		},
	},
	{
		name: "CONNECT password flag without password", ref: "STYLE §1.3", code: 0x81,
		raw: []byte{
			0x10,                           // CONNECT
			0x0d,                           // remaining length 13
			0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
			0x05,       // protocol version 5
			0x40,       // flags: password
			0x00, 0x3c, // keep alive
			0x00,       // properties length
			0x00, 0x00, // client id, then no password
		},
	},

	// ---------------------------------------------------------------- CONNACK
	{
		name: "CONNACK success", ref: "[MQTT-3.2]",
		raw: []byte{
			0x20, // CONNACK
			0x03, // remaining length 3
			0x00, // acknowledge flags
			0x00, // reason code success
			0x00, // properties length 0
		},
	},
	{
		name: "CONNACK with properties", ref: "[MQTT-3.2.2.3]",
		raw: []byte{
			0x20,       // CONNACK
			0x12,       // remaining length 18
			0x01,       // acknowledge flags: session present
			0x00,       // reason code success
			0x0f,       // properties length 15
			0x24, 0x01, // maximum QoS 1
			0x22, 0x00, 0x00, // topic alias maximum 0
			0x12, 0x00, 0x02, 'i', 'd', // assigned client identifier
			0x27, 0x00, 0x08, 0x00, 0x00, // maximum packet size 512 KiB
		},
	},
	{
		name: "CONNACK without property length", ref: "STYLE §1.6 (read leniently)",
		raw: []byte{
			0x20, // CONNACK
			0x02, // remaining length 2
			0x00, // acknowledge flags
			0x87, // reason code not authorized
		},
	},
	{
		name: "CONNACK reserved acknowledge flags", ref: "[MQTT-3.2.2-1]", code: 0x81,
		raw: []byte{
			0x20, // CONNACK
			0x03, // remaining length 3
			0x02, // acknowledge flags: reserved bit 1
			0x00, // reason code
			0x00, // properties length
		},
	},
	{
		name: "CONNACK maximum QoS 2", ref: "[MQTT-3.2.2.3.4]", code: 0x82,
		raw: []byte{
			0x20,       // CONNACK
			0x05,       // remaining length 5
			0x00,       // acknowledge flags
			0x00,       // reason code
			0x02,       // properties length 2
			0x24, 0x02, // maximum QoS 2: only 0 or 1 may be sent
		},
	},
	{
		name: "CONNACK trailing bytes", ref: "STYLE §1.6", code: 0x81,
		raw: []byte{
			0x20, // CONNACK
			0x04, // remaining length 4
			0x00, // acknowledge flags
			0x00, // reason code
			0x00, // properties length
			0xff, // extra byte
		},
	},

	// ---------------------------------------------------------------- PUBLISH
	{
		name: "PUBLISH QoS 0", ref: "[MQTT-3.3]",
		raw: []byte{
			0x30,                      // PUBLISH, QoS 0
			0x08,                      // remaining length 8
			0x00, 0x03, 'a', '/', 'b', // topic "a/b"
			0x00,     // properties length 0
			'h', 'i', // payload
		},
	},
	{
		name: "PUBLISH QoS 1 retain with properties", ref: "[MQTT-3.3.2.3]",
		raw: []byte{
			0x33,                      // PUBLISH, QoS 1, retain
			0x1d,                      // remaining length 29
			0x00, 0x03, 'a', '/', 'b', // topic "a/b"
			0x00, 0x07, // packet id 7
			0x12,       // properties length 18
			0x01, 0x00, // payload format indicator 0
			0x02, 0x00, 0x00, 0x00, 0x0a, // message expiry interval 10
			0x09, 0x00, 0x01, 0x2a, // correlation data
			0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property
			'x', 'y', 'z', // payload
		},
	},
	{
		name: "PUBLISH QoS 2 dup with topic alias", ref: "[MQTT-3.3.2.3.4] SPEC 4",
		raw: []byte{
			0x3c,                      // PUBLISH, dup, QoS 2
			0x0c,                      // remaining length 12
			0x00, 0x03, 'a', '/', 'b', // topic "a/b" (defines alias 5)
			0x00, 0x09, // packet id 9
			0x03,             // properties length 3
			0x23, 0x00, 0x05, // topic alias 5
			'!', // payload
		},
	},
	{
		name: "PUBLISH empty topic with topic alias", ref: "[MQTT-3.3.2.3.4]",
		raw: []byte{
			0x30,       // PUBLISH, QoS 0
			0x06,       // remaining length 6
			0x00, 0x00, // topic "" (use alias)
			0x03,             // properties length 3
			0x23, 0x00, 0x05, // topic alias 5
		},
	},
	{
		name: "PUBLISH two subscription identifiers", ref: "STYLE §1.5 [MQTT-3.3.4-3]",
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x08,            // remaining length 8
			0x00, 0x01, 'a', // topic "a"
			0x04,       // properties length 4
			0x0b, 0x01, // subscription identifier 1
			0x0b, 0x02, // subscription identifier 2: may repeat in PUBLISH
		},
	},
	{
		name: "PUBLISH topic with + wildcard", ref: "[MQTT-3.3.2-2] SPEC 4", code: 0x82,
		raw: []byte{
			0x30,                      // PUBLISH, QoS 0
			0x06,                      // remaining length 6
			0x00, 0x03, 'a', '/', '+', // topic "a/+"
			0x00, // properties length
		},
	},
	{
		name: "PUBLISH topic with # wildcard", ref: "[MQTT-3.3.2-2] SPEC 4", code: 0x82,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x04,            // remaining length 4
			0x00, 0x01, '#', // topic "#"
			0x00, // properties length
		},
	},
	{
		name: "PUBLISH topic with U+0000", ref: "[MQTT-1.5.4-2] SPEC 4", code: 0x81,
		raw: []byte{
			0x30,                       // PUBLISH, QoS 0
			0x06,                       // remaining length 6
			0x00, 0x03, 'a', 0x00, 'b', // topic "a\x00b"
			0x00, // properties length
		},
	},
	{
		name: "PUBLISH topic not UTF-8", ref: "[MQTT-1.5.4-1] SPEC 4", code: 0x81,
		raw: []byte{
			0x30,             // PUBLISH, QoS 0
			0x04,             // remaining length 4
			0x00, 0x01, 0xff, // topic: byte 0xff
			0x00, // properties length
		},
	},
	{
		name: "PUBLISH topic with encoded surrogate", ref: "[MQTT-1.5.4-1]", code: 0x81,
		raw: []byte{
			0x30,                         // PUBLISH, QoS 0
			0x06,                         // remaining length 6
			0x00, 0x03, 0xed, 0xa0, 0x80, // topic: U+D800 encoded
			0x00, // properties length
		},
	},
	{
		name: "PUBLISH empty topic without alias", ref: "[MQTT-3.3.4] SPEC 4", code: 0x82,
		raw: []byte{
			0x30,       // PUBLISH, QoS 0
			0x03,       // remaining length 3
			0x00, 0x00, // topic ""
			0x00, // properties length
		},
	},
	{
		name: "PUBLISH topic alias 0", ref: "[MQTT-3.3.2-8] SPEC 4", code: 0x94,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x07,            // remaining length 7
			0x00, 0x01, 'a', // topic "a"
			0x03,             // properties length 3
			0x23, 0x00, 0x00, // topic alias 0
		},
	},
	{
		name: "PUBLISH QoS 1 packet id 0", ref: "[MQTT-2.2.1-3]", code: 0x82,
		raw: []byte{
			0x32,            // PUBLISH, QoS 1
			0x06,            // remaining length 6
			0x00, 0x01, 'a', // topic
			0x00, 0x00, // packet id 0
			0x00, // properties length
		},
	},
	{
		name: "PUBLISH DUP at QoS 0", ref: "[MQTT-3.3.1-2]", code: 0x82,
		raw: []byte{
			0x38,            // PUBLISH, dup, QoS 0
			0x04,            // remaining length 4
			0x00, 0x01, 'a', // topic
			0x00, // properties length
		},
	},
	{
		name: "PUBLISH duplicate message expiry", ref: "[MQTT-3.3.2.3.3] STYLE §1.6", code: 0x82,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x0e,            // remaining length 14
			0x00, 0x01, 'a', // topic
			0x0a,                         // properties length 10
			0x02, 0x00, 0x00, 0x00, 0x01, // message expiry 1
			0x02, 0x00, 0x00, 0x00, 0x02, // message expiry 2 again
		},
	},
	{
		name: "PUBLISH duplicate topic alias", ref: "[MQTT-3.3.2.3.4]", code: 0x82,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x0a,            // remaining length 10
			0x00, 0x01, 'a', // topic
			0x06,             // properties length 6
			0x23, 0x00, 0x01, // topic alias 1
			0x23, 0x00, 0x02, // topic alias 2 again
		},
	},
	{
		name: "PUBLISH session expiry property", ref: "[MQTT-2.2.2-2]", code: 0x81,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x09,            // remaining length 9
			0x00, 0x01, 'a', // topic
			0x05,                         // properties length 5
			0x11, 0x00, 0x00, 0x00, 0x01, // session expiry: not a PUBLISH property
		},
	},
	{
		name: "PUBLISH property block past end", ref: "STYLE §1.6 (properties.go:594)", code: 0x81,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x07,            // remaining length 7
			0x00, 0x01, 'a', // topic
			0x0a,             // properties length 10, but 3 bytes remain
			0x23, 0x00, 0x01, // topic alias 1
		},
	},
	{
		name: "PUBLISH property value truncated inside block", ref: "STYLE §1.3", code: 0x81,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x07,            // remaining length 7
			0x00, 0x01, 'a', // topic
			0x03,             // properties length 3
			0x02, 0x00, 0x00, // message expiry: 2 of its 4 bytes
		},
	},
	{
		name: "PUBLISH content type not UTF-8", ref: "[MQTT-1.5.4-1]", code: 0x81,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x08,            // remaining length 8
			0x00, 0x01, 'a', // topic
			0x04,                   // properties length 4
			0x03, 0x00, 0x01, 0x80, // content type: lone continuation byte
		},
	},
	{
		name: "PUBLISH user property with U+0000", ref: "[MQTT-1.5.4-2]", code: 0x81,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x0b,            // remaining length 11
			0x00, 0x01, 'a', // topic
			0x07,                                    // properties length 7
			0x26, 0x00, 0x01, 'k', 0x00, 0x01, 0x00, // user property k="\x00"
		},
	},
	{
		name: "PUBLISH response topic with wildcard", ref: "[MQTT-3.3.2-14]", code: 0x82,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x08,            // remaining length 8
			0x00, 0x01, 'a', // topic
			0x04,                  // properties length 4
			0x08, 0x00, 0x01, '#', // response topic "#"
		},
	},
	{
		name: "PUBLISH payload format indicator 2", ref: "[MQTT-3.3.2.3.2]", code: 0x82,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x06,            // remaining length 6
			0x00, 0x01, 'a', // topic
			0x02,       // properties length 2
			0x01, 0x02, // payload format indicator 2
		},
	},
	{
		name: "PUBLISH subscription identifier 0", ref: "[MQTT-3.3.2.3.8]", code: 0x82,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x06,            // remaining length 6
			0x00, 0x01, 'a', // topic
			0x02,       // properties length 2
			0x0b, 0x00, // subscription identifier 0
		},
	},
	{
		name: "PUBLISH topic length past end", ref: "STYLE §1.3", code: 0x81,
		raw: []byte{
			0x30,       // PUBLISH, QoS 0
			0x03,       // remaining length 3
			0x00, 0x05, // topic length 5
			'a', // one byte of it
		},
	},
	{
		name: "PUBLISH property length of 5 bytes", ref: "[MQTT-1.5.5-1]", code: 0x81,
		raw: []byte{
			0x30,            // PUBLISH, QoS 0
			0x08,            // remaining length 8
			0x00, 0x01, 'a', // topic
			0xff, 0xff, 0xff, 0xff, 0x7f, // property length: 5-byte VBI
		},
	},

	// -------------------------------------------- PUBACK PUBREC PUBREL PUBCOMP
	{name: "PUBACK short form", ref: "[MQTT-3.4.2.1]", raw: []byte{0x40 /* PUBACK */, 0x02 /* remaining length */, 0x00, 0x01 /* packet id 1 */}},
	{name: "PUBACK reason without properties", ref: "[MQTT-3.4.2.1]", raw: []byte{0x40 /* PUBACK */, 0x03, 0x00, 0x01 /* packet id */, 0x10 /* no matching subscribers */}},
	{
		name: "PUBACK with reason string", ref: "[MQTT-3.4.2.2]",
		raw: []byte{
			0x40,       // PUBACK
			0x08,       // remaining length 8
			0x00, 0x01, // packet id 1
			0x87,                  // reason code not authorized
			0x04,                  // properties length 4
			0x1f, 0x00, 0x01, 'n', // reason string
		},
	},
	{name: "PUBREC short form", ref: "[MQTT-3.5.2.1]", raw: []byte{0x50 /* PUBREC */, 0x02, 0x00, 0x02 /* packet id 2 */}},
	{name: "PUBREL short form", ref: "[MQTT-3.6.2.1]", raw: []byte{0x62 /* PUBREL, flags 0010 */, 0x02, 0x00, 0x03 /* packet id 3 */}},
	{name: "PUBCOMP with empty properties", ref: "[MQTT-3.7.2.1]", raw: []byte{0x70 /* PUBCOMP */, 0x04, 0x00, 0x04 /* packet id 4 */, 0x00 /* reason */, 0x00 /* properties length */}},
	{name: "PUBACK packet id 0", ref: "[MQTT-2.2.1-3]", code: 0x82, raw: []byte{0x40 /* PUBACK */, 0x02, 0x00, 0x00 /* packet id 0 */}},
	{name: "PUBACK truncated packet id", ref: "STYLE §1.3", code: 0x81, raw: []byte{0x40 /* PUBACK */, 0x01, 0x00 /* half a packet id */}},
	{
		name: "PUBACK trailing bytes", ref: "STYLE §1.6", code: 0x81,
		raw: []byte{
			0x40,       // PUBACK
			0x05,       // remaining length 5
			0x00, 0x01, // packet id
			0x00, // reason
			0x00, // properties length
			0xff, // extra byte
		},
	},
	{
		name: "PUBACK topic alias property", ref: "[MQTT-2.2.2-2]", code: 0x81,
		raw: []byte{
			0x40,       // PUBACK
			0x07,       // remaining length 7
			0x00, 0x01, // packet id
			0x00,             // reason
			0x03,             // properties length 3
			0x23, 0x00, 0x01, // topic alias: not a PUBACK property
		},
	},

	// -------------------------------------------------------------- SUBSCRIBE
	{
		name: "SUBSCRIBE two filters with subscription identifier", ref: "[MQTT-3.8]",
		raw: []byte{
			0x82,       // SUBSCRIBE, flags 0010
			0x0f,       // remaining length 15
			0x00, 0x0a, // packet id 10
			0x02,       // properties length 2
			0x0b, 0x07, // subscription identifier 7
			0x00, 0x03, 'a', '/', '+', // filter "a/+"
			0x01,            // options: QoS 1
			0x00, 0x01, '#', // filter "#"
			0x2e, // options: QoS 2, no local, retain as published, retain handling 2
		},
	},
	{
		name: "SUBSCRIBE without filters", ref: "[MQTT-3.8.3-2] STYLE §1.6", code: 0x82,
		raw: []byte{
			0x82,       // SUBSCRIBE
			0x03,       // remaining length 3
			0x00, 0x01, // packet id
			0x00, // properties length, then no payload
		},
	},
	{
		name: "SUBSCRIBE reserved option bits", ref: "[MQTT-3.8.3-5]", code: 0x81,
		raw: []byte{
			0x82,       // SUBSCRIBE
			0x07,       // remaining length 7
			0x00, 0x01, // packet id
			0x00,            // properties length
			0x00, 0x01, 'a', // filter "a"
			0x40, // options: reserved bit 6
		},
	},
	{
		name: "SUBSCRIBE QoS 3", ref: "[MQTT-3.8.3.1]", code: 0x82,
		raw: []byte{
			0x82,       // SUBSCRIBE
			0x07,       // remaining length 7
			0x00, 0x01, // packet id
			0x00,            // properties length
			0x00, 0x01, 'a', // filter
			0x03, // options: QoS 3
		},
	},
	{
		name: "SUBSCRIBE retain handling 3", ref: "[MQTT-3.8.3.1]", code: 0x82,
		raw: []byte{
			0x82,       // SUBSCRIBE
			0x07,       // remaining length 7
			0x00, 0x01, // packet id
			0x00,            // properties length
			0x00, 0x01, 'a', // filter
			0x30, // options: retain handling 3
		},
	},
	{
		name: "SUBSCRIBE no local on shared subscription", ref: "[MQTT-3.8.3-4]", code: 0x82,
		raw: []byte{
			0x82,       // SUBSCRIBE
			0x0f,       // remaining length 15
			0x00, 0x01, // packet id
			0x00,                                                    // properties length
			0x00, 0x09, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', // filter "$share/g/" (prefix only)
			0x04, // options: no local
		},
	},
	{
		name: "SUBSCRIBE empty filter", ref: "[MQTT-4.7.3-1]", code: 0x82,
		raw: []byte{
			0x82,       // SUBSCRIBE
			0x06,       // remaining length 6
			0x00, 0x01, // packet id
			0x00,       // properties length
			0x00, 0x00, // filter ""
			0x00, // options
		},
	},
	{
		name: "SUBSCRIBE filter with U+0000", ref: "[MQTT-1.5.4-2]", code: 0x81,
		raw: []byte{
			0x82,       // SUBSCRIBE
			0x07,       // remaining length 7
			0x00, 0x01, // packet id
			0x00,             // properties length
			0x00, 0x01, 0x00, // filter "\x00"
			0x00, // options
		},
	},
	{
		name: "SUBSCRIBE duplicate subscription identifier", ref: "[MQTT-3.8.2.1.2]", code: 0x82,
		raw: []byte{
			0x82,       // SUBSCRIBE
			0x0b,       // remaining length 11
			0x00, 0x01, // packet id
			0x04,       // properties length 4
			0x0b, 0x01, // subscription identifier 1
			0x0b, 0x02, // subscription identifier 2: only once in SUBSCRIBE
			0x00, 0x01, 'a', // filter
			0x00, // options
		},
	},
	{
		name: "SUBSCRIBE packet id 0", ref: "[MQTT-2.2.1-3]", code: 0x82,
		raw: []byte{
			0x82,       // SUBSCRIBE
			0x07,       // remaining length 7
			0x00, 0x00, // packet id 0
			0x00,            // properties length
			0x00, 0x01, 'a', // filter
			0x00, // options
		},
	},
	{
		name: "SUBSCRIBE missing options byte", ref: "STYLE §1.3", code: 0x81,
		raw: []byte{
			0x82,       // SUBSCRIBE
			0x06,       // remaining length 6
			0x00, 0x01, // packet id
			0x00,            // properties length
			0x00, 0x01, 'a', // filter, then no options
		},
	},

	// ------------------------------------------------------------------ SUBACK
	{name: "SUBACK", ref: "[MQTT-3.9]", raw: []byte{0x90 /* SUBACK */, 0x05, 0x00, 0x0a /* packet id */, 0x00 /* properties length */, 0x01, 0x87 /* reason codes */}},
	{name: "SUBACK without reason codes", ref: "[MQTT-3.9.3-1]", code: 0x82, raw: []byte{0x90 /* SUBACK */, 0x03, 0x00, 0x0a /* packet id */, 0x00 /* properties length */}},

	// ------------------------------------------------------------- UNSUBSCRIBE
	{
		name: "UNSUBSCRIBE", ref: "[MQTT-3.10]",
		raw: []byte{
			0xa2,       // UNSUBSCRIBE, flags 0010
			0x0b,       // remaining length 11
			0x00, 0x0b, // packet id 11
			0x00,                      // properties length
			0x00, 0x03, 'a', '/', '#', // filter "a/#"
			0x00, 0x01, 'b', // filter "b"
		},
	},
	{
		name: "UNSUBSCRIBE without filters", ref: "[MQTT-3.10.3-2] STYLE §1.6", code: 0x82,
		raw: []byte{
			0xa2,       // UNSUBSCRIBE
			0x03,       // remaining length 3
			0x00, 0x01, // packet id
			0x00, // properties length
		},
	},
	{
		name: "UNSUBSCRIBE subscription identifier property", ref: "[MQTT-2.2.2-2]", code: 0x81,
		raw: []byte{
			0xa2,       // UNSUBSCRIBE
			0x08,       // remaining length 8
			0x00, 0x01, // packet id
			0x02,       // properties length 2
			0x0b, 0x01, // subscription identifier: not an UNSUBSCRIBE property
			0x00, 0x01, 'a', // filter
		},
	},

	// ---------------------------------------------------------------- UNSUBACK
	{name: "UNSUBACK", ref: "[MQTT-3.11]", raw: []byte{0xb0 /* UNSUBACK */, 0x04, 0x00, 0x0b /* packet id */, 0x00 /* properties length */, 0x11 /* no subscription existed */}},

	// -------------------------------------------------------- PINGREQ PINGRESP
	{name: "PINGREQ", ref: "[MQTT-3.12]", raw: []byte{0xc0 /* PINGREQ */, 0x00 /* remaining length */}},
	{name: "PINGRESP", ref: "[MQTT-3.13]", raw: []byte{0xd0 /* PINGRESP */, 0x00}},
	{name: "PINGREQ with a body", ref: "STYLE §1.6", code: 0x81, raw: []byte{0xc0 /* PINGREQ */, 0x01 /* remaining length 1 */, 0x00 /* body */}},

	// -------------------------------------------------------------- DISCONNECT
	{name: "DISCONNECT e0 00", ref: "STYLE §1.2 [MQTT-3.14.2.1]", raw: []byte{0xe0 /* DISCONNECT */, 0x00 /* remaining length 0: reason 0x00 */}},
	{name: "DISCONNECT e0 01 8e", ref: "[MQTT-3.14.2.2.1]", raw: []byte{0xe0 /* DISCONNECT */, 0x01, 0x8e /* session taken over, no property length */}},
	{
		name: "DISCONNECT with will and session expiry", ref: "[MQTT-3.14.2.2]",
		raw: []byte{
			0xe0,                         // DISCONNECT
			0x07,                         // remaining length 7
			0x04,                         // reason: disconnect with Will message
			0x05,                         // properties length 5
			0x11, 0x00, 0x00, 0x00, 0x00, // session expiry interval 0
		},
	},
	{
		name: "DISCONNECT unknown property", ref: "[MQTT-2.2.2-2]", code: 0x81,
		raw: []byte{
			0xe0, // DISCONNECT
			0x03, // remaining length 3
			0x00, // reason
			0x01, // properties length 1
			0x7f, // property 0x7f: unknown
		},
	},
	{
		name: "DISCONNECT trailing bytes", ref: "STYLE §1.6", code: 0x81,
		raw: []byte{
			0xe0, // DISCONNECT
			0x03, // remaining length 3
			0x00, // reason
			0x00, // properties length
			0xff, // extra byte
		},
	},
	{
		name: "DISCONNECT reason string not UTF-8", ref: "[MQTT-1.5.4-1]", code: 0x81,
		raw: []byte{
			0xe0,                   // DISCONNECT
			0x06,                   // remaining length 6
			0x80,                   // reason
			0x04,                   // properties length 4
			0x1f, 0x00, 0x01, 0xfe, // reason string: byte 0xfe
		},
	},

	// -------------------------------------------------------------------- AUTH
	{name: "AUTH remaining length 0", ref: "[MQTT-3.15.2.1]", raw: []byte{0xf0 /* AUTH */, 0x00 /* remaining length 0: reason 0x00 */}},
	{
		name: "AUTH re-authenticate", ref: "[MQTT-3.15.2.2] SPEC 2.2",
		raw: []byte{
			0xf0,                                                               // AUTH
			0x15,                                                               // remaining length 21
			0x19,                                                               // reason: re-authenticate
			0x13,                                                               // properties length 19
			0x15, 0x00, 0x0a, 'O', 'A', 'U', 'T', 'H', '2', '-', 'J', 'W', 'T', // authentication method
			0x16, 0x00, 0x03, 'j', 'w', 't', // authentication data
		},
	},
	{
		name: "AUTH duplicate authentication data", ref: "[MQTT-3.15.2.2.3]", code: 0x82,
		raw: []byte{
			0xf0,                  // AUTH
			0x0a,                  // remaining length 10
			0x19,                  // reason
			0x08,                  // properties length 8
			0x16, 0x00, 0x01, 'a', // authentication data
			0x16, 0x00, 0x01, 'b', // authentication data again
		},
	},
	{
		name: "AUTH session expiry property", ref: "[MQTT-2.2.2-2]", code: 0x81,
		raw: []byte{
			0xf0,                         // AUTH
			0x07,                         // remaining length 7
			0x19,                         // reason
			0x05,                         // properties length 5
			0x11, 0x00, 0x00, 0x00, 0x01, // session expiry: not an AUTH property
		},
	},
}
