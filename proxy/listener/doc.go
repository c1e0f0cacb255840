// Package listener provides the client-facing listeners beyond plain TCP
// (SPEC 6): TLS whose certificate is re-read when its files change (no
// restart), and MQTT over WebSocket (path /mqtt, subprotocol "mqtt"), with
// or without TLS. Each is a net.Listener so proxy.Server serves them alike.
package listener
