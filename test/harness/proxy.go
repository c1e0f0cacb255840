package harness

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqtt-authproxy/mqtt-authproxy/proxy"
	"github.com/mqtt-authproxy/mqtt-authproxy/test/syncbuf"
)

// Proxy is an in-process proxy serving on a loopback listener.
type Proxy struct {
	Addr     string
	Server   *proxy.Server
	Registry *prometheus.Registry
	// Logs holds everything the proxy logged (operational and audit, JSON,
	// debug level) so tests can assert what was and was not logged.
	Logs *SyncBuffer
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer = syncbuf.Buffer

// UpstreamConfig returns the default proxy config pointing at upstream.
func UpstreamConfig(upstream string) proxy.Config {
	cfg := proxy.DefaultConfig()
	cfg.Listeners.TCP = "127.0.0.1:0"
	cfg.Admin.Address = ""
	cfg.Upstream.Address = upstream
	cfg.Upstream.DialTimeout = 2 * time.Second
	cfg.Limits.ConnectTimeout = 2 * time.Second
	return cfg
}

// StartProxy starts the proxy with cfg and opts on 127.0.0.1:0 and shuts it
// down when the test ends. Logger, Audit and Registerer are filled in when
// nil.
func StartProxy(t testing.TB, cfg proxy.Config, opts proxy.Options) *Proxy {
	t.Helper()
	return StartProxyWithLogs(t, cfg, opts, &SyncBuffer{})
}

// DebugLogger logs everything, as JSON, into b.
func DebugLogger(b *SyncBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// StartProxyWithLogs is StartProxy logging into logs, which other parts of
// the test (the token verifier) may share.
func StartProxyWithLogs(t testing.TB, cfg proxy.Config, opts proxy.Options, logs *SyncBuffer) *Proxy {
	t.Helper()
	p := &Proxy{Logs: logs, Registry: prometheus.NewPedanticRegistry()}
	if opts.Logger == nil {
		opts.Logger = DebugLogger(logs)
	}
	if opts.Audit == nil {
		opts.Audit = logs
	}
	if opts.Registerer == nil {
		opts.Registerer = p.Registry
	}
	srv, err := proxy.New(cfg, opts)
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p.Addr, p.Server = ln.Addr().String(), srv
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, ln)
	}()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		cancel()
		<-done
	})
	return p
}

// Serve makes the proxy also serve ln (a TLS or WebSocket listener) until
// the test ends.
func (p *Proxy) Serve(t testing.TB, ln net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Server.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); ln.Close(); <-done })
}
