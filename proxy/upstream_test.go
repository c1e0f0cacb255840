package proxy

import (
	"strings"
	"testing"
)

func TestUpstreamEndpoint(t *testing.T) {
	for _, tc := range []struct {
		address, network, addr string
	}{
		{"127.0.0.1:1884", "tcp", "127.0.0.1:1884"},
		{"broker.internal:8883", "tcp", "broker.internal:8883"},
		{"unix:/run/mqtt/mosquitto.sock", "unix", "/run/mqtt/mosquitto.sock"},
		{"unix:///run/mqtt/mosquitto.sock", "unix", "/run/mqtt/mosquitto.sock"},
		{"unix:relative.sock", "unix", "relative.sock"},
	} {
		network, addr := UpstreamConfig{Address: tc.address}.Endpoint()
		if network != tc.network || addr != tc.addr {
			t.Errorf("Endpoint(%q) = %q %q, want %q %q", tc.address, network, addr, tc.network, tc.addr)
		}
	}
}

func TestUpstreamAddressValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(*UpstreamConfig)
		problem string // "" = valid
	}{
		{"tcp", func(u *UpstreamConfig) { u.Address = "127.0.0.1:1884" }, ""},
		{"unix socket", func(u *UpstreamConfig) { u.Address = "unix:/run/mqtt/mosquitto.sock" }, ""},
		{"no port", func(u *UpstreamConfig) { u.Address = "127.0.0.1" }, "upstream.address"},
		{"unix without path", func(u *UpstreamConfig) { u.Address = "unix:" }, "names no socket path"},
		{"unix relative path", func(u *UpstreamConfig) { u.Address = "unix:1884" }, "must be absolute"},
		{"unix abstract socket", func(u *UpstreamConfig) { u.Address = "unix:@mosquitto" }, ""},
		{"unix path too long", func(u *UpstreamConfig) { u.Address = "unix:/" + strings.Repeat("d", 107) }, "longer than the 107"},
		{"unix with TLS", func(u *UpstreamConfig) {
			u.Address = "unix:/run/mqtt/mosquitto.sock"
			u.TLS.Enabled = true
		}, "upstream.tls.enabled: TLS over a Unix socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg.Upstream)
			err := cfg.validateProxy()
			switch {
			case tc.problem == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
				t.Fatalf("err = %v, want one naming %q", err, tc.problem)
			}
		})
	}
}
