// Package proxy is the MQTT v5 session layer of mqtt-authproxy: it accepts
// client connections, authenticates their CONNECT (SPEC 2), dials one upstream
// connection per client only after that, and relays packets both ways while
// enforcing authorization on every PUBLISH, SUBSCRIBE and Will (SPEC 3.4).
//
// Each client connection is one state machine (conn.go):
//
//	awaiting CONNECT → authenticating → dialling upstream → relaying → ending
//
// Relaying runs two pumps (client→broker, broker→client) that report into one
// channel; the expiry timer, re-authentication, policy re-checks and shutdown
// ask the connection to end through the same path, so exactly one place
// decides what the client and the broker are told when a connection ends.
//
// Invariants:
//   - nothing is sent upstream before the client is authenticated and its Will
//     authorized; the upstream never sees Authentication Method or Data;
//   - every socket has one mutex-guarded buffered writer (packetcodec.Writer);
//   - packets the proxy does not change are forwarded as their original bytes;
//   - tokens and passwords are never logged.
package proxy
