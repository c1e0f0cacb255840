// Package test holds the end-to-end tests: a real Mosquitto, the proxy
// in-process on loopback, a real loopback identity provider, and the real
// paho.golang client. Helpers live in test/harness.
package test
