// Package harness starts the real parts end-to-end tests need: a Mosquitto
// broker on an ephemeral loopback port with a config file it writes, the
// proxy in-process on a loopback listener, and paho.golang clients. Every
// start registers its stop with t.Cleanup; nothing uses a fixed port or a
// broker that was already running.
package harness
