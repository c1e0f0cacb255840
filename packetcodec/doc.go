// Package packetcodec is the wire-safety layer between sockets and the
// eclipse/paho.golang packets types: it frames MQTT v5 control packets off a
// stream, validates them, decodes them into paho structs and encodes the few
// packets the proxy rewrites.
//
// It exists because paho's packets v0.23.0 trusts its input (STYLE §1): no
// size limit before allocation, a 5-byte Remaining Length accepted, io.EOF
// for anything truncated, no UTF-8/U+0000, wildcard, QoS 3, reserved-flag or
// duplicate-property checks, Will properties dropped on re-encode and strings
// silently truncated on write.
//
// Invariants:
//
//   - A Reader enforces the Maximum Packet Size from the fixed header alone,
//     before it reads or allocates the body (SPEC 4), and rejects a Remaining
//     Length longer than 4 bytes [MQTT-1.5.5-1].
//   - io.EOF means exactly "the peer closed between two packets" (STYLE 18).
//     Every other failure to read a packet, and every violation found while
//     decoding, is an *Error carrying the MQTT v5 reason code to answer with,
//     so the connection boundary picks its DISCONNECT/CONNACK with errors.As.
//   - Reason strings in an *Error name fields and numbers only, never bytes
//     taken from the packet, so they are safe to send back and to log.
//   - Decoders copy what they keep; a Frame's bytes are only borrowed until
//     the next ReadFrame. The forwarding hot path (ReadFrame, ParsePublish,
//     Writer.Write) does not allocate in steady state.
//   - Packets the proxy does not change are forwarded as their original bytes
//     (SPEC 4), which also sidesteps paho's re-encode losses. CONNECT has its
//     own encoder so Will properties survive byte for byte (STYLE §1 item 4),
//     and no encoder here truncates a string (STYLE §1 item 7).
//   - paho's ReadPacket is never called on a stream and no packet's String()
//     is ever used: Summary is the only thing that describes a packet for a
//     log, and it prints names, sizes and ids, never payloads or credentials.
//
// The package imports only the standard library and paho's packets.
package packetcodec
