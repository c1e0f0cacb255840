package proxy

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/policy"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
)

// Config is the root configuration of the proxy. It composes the sections of
// each package (SPEC 7); cmd/ fills it from YAML, environment and flags, tests
// build it in Go. Validate reports every problem at once.
type Config struct {
	Listeners ListenersConfig `mapstructure:"listeners"`
	Admin     AdminConfig     `mapstructure:"admin"`
	Upstream  UpstreamConfig  `mapstructure:"upstream"`
	Auth      token.Config    `mapstructure:"auth"`
	Policy    policy.Config   `mapstructure:"policy"`
	Session   SessionConfig   `mapstructure:"session"`
	Limits    LimitsConfig    `mapstructure:"limits"`
}

// ListenersConfig says where clients connect.
type ListenersConfig struct {
	// TCP is the plain MQTT listener address. Default: ":1883"; "" disables.
	TCP string `mapstructure:"tcp"`
	// TLS is MQTT over TLS. Default: disabled.
	TLS TLSListenerConfig `mapstructure:"tls"`
	// WebSocket is MQTT over WebSocket (wss when a certificate is set).
	// Default: disabled.
	WebSocket WebSocketListenerConfig `mapstructure:"websocket"`
}

// TLSListenerConfig is an MQTT-over-TLS listener; the certificate is re-read
// when its files change.
type TLSListenerConfig struct {
	// Address to listen on. Default: "" (disabled).
	Address string `mapstructure:"address"`
	// CertFile and KeyFile are the PEM server certificate and key.
	CertFile string `mapstructure:"certFile"`
	KeyFile  string `mapstructure:"keyFile"`
	// ClientCAFile, if set, requires client certificates signed by it.
	ClientCAFile string `mapstructure:"clientCAFile"`
}

// WebSocketListenerConfig is an MQTT-over-WebSocket listener.
type WebSocketListenerConfig struct {
	// Address to listen on. Default: "" (disabled).
	Address string `mapstructure:"address"`
	// Path of the WebSocket endpoint. Default: /mqtt.
	Path string `mapstructure:"path"`
	// CertFile and KeyFile enable wss. Default: "" (plain ws).
	CertFile string `mapstructure:"certFile"`
	KeyFile  string `mapstructure:"keyFile"`
}

// AdminConfig is the HTTP admin listener (/metrics, /healthz, /readyz).
type AdminConfig struct {
	// Address of the admin listener. Default: "127.0.0.1:9090"; "" disables.
	Address string `mapstructure:"address"`
}

// UpstreamConfig is the broker the proxy forwards to.
type UpstreamConfig struct {
	// Address is the broker's host:port, or "unix:" and the absolute path
	// of a Unix socket the broker listens on (Mosquitto 2: `listener 0 PATH`),
	// which a sidecar reaches more cheaply than loopback TCP (BENCHMARKS.md).
	// Default: "127.0.0.1:1884".
	Address string `mapstructure:"address"`
	// Username sent upstream. Default: "" meaning the client's
	// authentication name (SPEC 3.5).
	Username string `mapstructure:"username"`
	// Password is the upstream password (SPEC 3.5), for an environment
	// variable from a secret (MQTT_AUTHPROXY_UPSTREAM_PASSWORD); the
	// client's password is never forwarded. Default: "" (no password).
	Password SecretString `mapstructure:"password"`
	// PasswordFile holds the upstream password instead (one trailing
	// newline is dropped). Default: "".
	PasswordFile string `mapstructure:"passwordFile"`
	// DialTimeout bounds dialling and the upstream CONNACK. Default: 5s.
	DialTimeout time.Duration `mapstructure:"dialTimeout"`
	// TLS secures the upstream connection. Default: disabled.
	TLS UpstreamTLSConfig `mapstructure:"tls"`
}

// unixPrefix marks an upstream address that is a Unix socket path.
const unixPrefix = "unix:"

// maxUnixPath is the longest socket path Linux accepts (sun_path holds 108
// bytes with the terminating NUL).
const maxUnixPath = 107

// Endpoint returns the network and address to dial: ("unix", path) for a
// "unix:PATH" or "unix://PATH" address, else ("tcp", address).
func (u UpstreamConfig) Endpoint() (network, address string) {
	rest, ok := strings.CutPrefix(u.Address, unixPrefix)
	if !ok {
		return "tcp", u.Address
	}
	if p, ok := strings.CutPrefix(rest, "//"); ok {
		rest = p
	}
	return "unix", rest
}

// UpstreamTLSConfig is TLS towards the broker.
type UpstreamTLSConfig struct {
	// Enabled turns TLS on. Default: false.
	Enabled bool `mapstructure:"enabled"`
	// CAFile verifies the broker's certificate. Default: system roots.
	CAFile string `mapstructure:"caFile"`
	// ServerName overrides the name verified. Default: the address host.
	ServerName string `mapstructure:"serverName"`
}

// Isolation is how client ids are mapped upstream (SPEC 3.5).
type Isolation string

// Session isolation modes.
const (
	IsolationPrefix Isolation = "prefix"
	IsolationOwner  Isolation = "owner"
	IsolationOff    Isolation = "off"
)

// SessionConfig holds session-related behaviour.
type SessionConfig struct {
	// Isolation maps client ids upstream: prefix | owner | off.
	// Default: prefix.
	Isolation Isolation `mapstructure:"isolation"`
	// WillOnExpiry: when a token expires, close upstream without DISCONNECT
	// so the broker publishes the Will (true), or with DISCONNECT 0x00 so it
	// is discarded (false). Default: true (SPEC 2.3).
	WillOnExpiry bool `mapstructure:"willOnExpiry"`
}

// LimitsConfig bounds what a client may cost.
type LimitsConfig struct {
	// MaxPacketSize is the largest packet accepted, in bytes, advertised in
	// CONNACK. Default: 524288 (512 KiB).
	MaxPacketSize int `mapstructure:"maxPacketSize"`
	// MaxAuthDataSize is the largest Authentication Data accepted, in
	// bytes. Default: 8192.
	MaxAuthDataSize int `mapstructure:"maxAuthDataSize"`
	// ConnectTimeout is how long a new connection may take to send CONNECT.
	// Default: 10s.
	ConnectTimeout time.Duration `mapstructure:"connectTimeout"`
	// MaxConnections caps concurrent client connections. Default: 0
	// (unlimited).
	MaxConnections int `mapstructure:"maxConnections"`
	// TopicAliasMaximum is the Topic Alias Maximum advertised to clients;
	// the proxy resolves aliases itself (SPEC 4). Default: 10.
	TopicAliasMaximum int `mapstructure:"topicAliasMaximum"`
}

// maxMQTTPacketSize is the largest size a remaining-length field can express.
const maxMQTTPacketSize = 268435455 + 5

// DefaultConfig returns the documented defaults of SPEC 7.
func DefaultConfig() Config {
	return Config{
		Listeners: ListenersConfig{TCP: ":1883", WebSocket: WebSocketListenerConfig{Path: "/mqtt"}},
		Admin:     AdminConfig{Address: "127.0.0.1:9090"},
		Upstream:  UpstreamConfig{Address: "127.0.0.1:1884", DialTimeout: 5 * time.Second},
		Auth:      token.DefaultConfig(),
		Policy:    policy.DefaultConfig(),
		Session:   SessionConfig{Isolation: IsolationPrefix, WillOnExpiry: true},
		Limits: LimitsConfig{
			MaxPacketSize:     512 * 1024,
			MaxAuthDataSize:   8192,
			ConnectTimeout:    10 * time.Second,
			TopicAliasMaximum: 10,
		},
	}
}

// Validate returns every problem of the configuration — the proxy's own
// sections, auth and policy — with its key path, joined into one error, or
// nil. check-config and serve run exactly this.
func (c *Config) Validate() error {
	return errors.Join(c.validateProxy(), c.Auth.Validate(), c.Policy.Validate())
}

// validateProxy checks the sections the Server itself uses; New runs it, so
// tests may build a Server with a fake authenticator and no policy files.
func (c *Config) validateProxy() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	checkAddr := func(key, addr string, required bool) {
		if addr == "" {
			if required {
				bad(key, "must be set")
			}
			return
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not host:port", addr)
		}
	}
	checkAddr("listeners.tcp", c.Listeners.TCP, false)
	checkAddr("listeners.tls.address", c.Listeners.TLS.Address, false)
	if c.Listeners.TLS.Address != "" && (c.Listeners.TLS.CertFile == "" || c.Listeners.TLS.KeyFile == "") {
		bad("listeners.tls", "certFile and keyFile are required when address is set")
	}
	checkAddr("listeners.websocket.address", c.Listeners.WebSocket.Address, false)
	if ws := c.Listeners.WebSocket; ws.Address != "" {
		if !strings.HasPrefix(ws.Path, "/") {
			bad("listeners.websocket.path", "must start with /, got %q", ws.Path)
		}
		if (ws.CertFile == "") != (ws.KeyFile == "") {
			bad("listeners.websocket", "certFile and keyFile must be set together")
		}
	}
	if c.Listeners.TCP == "" && c.Listeners.TLS.Address == "" && c.Listeners.WebSocket.Address == "" {
		bad("listeners", "at least one of tcp, tls.address, websocket.address must be set")
	}
	checkAddr("admin.address", c.Admin.Address, false)
	if network, path := c.Upstream.Endpoint(); network == "unix" {
		switch {
		case path == "":
			bad("upstream.address", "%q names no socket path", c.Upstream.Address)
		case !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@"):
			// A relative path would depend on the working directory, and
			// "unix:1884" reads like a host named unix.
			bad("upstream.address", "socket path %q must be absolute (or @name for an abstract socket)", path)
		case len(path) > maxUnixPath:
			bad("upstream.address", "socket path is %d bytes, longer than the %d a Unix socket allows", len(path), maxUnixPath)
		case c.Upstream.TLS.Enabled:
			bad("upstream.tls.enabled", "TLS over a Unix socket is not supported")
		}
	} else {
		checkAddr("upstream.address", c.Upstream.Address, true)
	}
	if c.Upstream.DialTimeout <= 0 {
		bad("upstream.dialTimeout", "must be positive, got %s", c.Upstream.DialTimeout)
	}
	switch c.Session.Isolation {
	case IsolationPrefix, IsolationOwner, IsolationOff:
	default:
		bad("session.isolation", "must be prefix, owner or off, got %q", c.Session.Isolation)
	}
	if c.Limits.MaxPacketSize < 128 || c.Limits.MaxPacketSize > maxMQTTPacketSize {
		bad("limits.maxPacketSize", "must be between 128 and %d bytes, got %d", maxMQTTPacketSize, c.Limits.MaxPacketSize)
	}
	if c.Limits.MaxAuthDataSize < 1 || c.Limits.MaxAuthDataSize > 65535 {
		bad("limits.maxAuthDataSize", "must be between 1 and 65535 bytes, got %d", c.Limits.MaxAuthDataSize)
	}
	if c.Limits.MaxPacketSize < c.Limits.MaxAuthDataSize {
		bad("limits.maxPacketSize", "is smaller than limits.maxAuthDataSize (%d bytes): a CONNECT carrying a token of the allowed size would be refused (CONNACK 0x95)", c.Limits.MaxAuthDataSize)
	}
	if c.Limits.ConnectTimeout <= 0 {
		bad("limits.connectTimeout", "must be positive, got %s", c.Limits.ConnectTimeout)
	}
	if c.Limits.MaxConnections < 0 {
		bad("limits.maxConnections", "must be 0 (unlimited) or positive, got %d", c.Limits.MaxConnections)
	}
	if c.Limits.TopicAliasMaximum < 0 || c.Limits.TopicAliasMaximum > 65535 {
		bad("limits.topicAliasMaximum", "must be between 0 and 65535, got %d", c.Limits.TopicAliasMaximum)
	}
	if len(c.Upstream.Password) > 0 && c.Upstream.PasswordFile != "" {
		bad("upstream.password", "set either it or upstream.passwordFile, not both")
	}
	return errors.Join(errs...)
}
