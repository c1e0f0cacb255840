package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/policy"
	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy/admin"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy/listener"
)

func runServe(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var f commonFlags
	f.register(fs)
	grace := fs.Duration("shutdown-grace", 10*time.Second, "how long shutdown waits for connections to end")
	auditDest := fs.String("audit-log", "stderr", auditLogHelp)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logs, err := newProcessLogs(stderr, f.logFormat, f.logLevel, *auditDest)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	defer logs.Close()
	cfg, err := loadConfig(f)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := serve(ctx, cfg, logs, *grace, nil); err != nil {
		logs.log.Error("serve failed", "err", err)
		return 1
	}
	return 0
}

// listening reports the bound addresses once serve is accepting (used by dev
// and tests that ask for port 0).
type listening struct {
	MQTT  string
	Admin string
}

// serve is the composition root (STYLE §3): it builds the registry, the token
// verifier, the policy store, the proxy, the listeners and the admin server,
// runs them until ctx is done, then shuts down within grace.
func serve(ctx context.Context, cfg proxy.Config, logs *processLogs, grace time.Duration, ready chan<- listening) error {
	log := logs.log
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mqtt_authproxy_log_lines_dropped_total",
			Help: "Log lines dropped because the log output did not take them in time.",
		}, func() float64 { return float64(logs.Dropped()) }),
	)
	verifier, err := token.NewVerifier(cfg.Auth, token.Options{
		Logger: log, Registerer: reg, MaxTokenSize: cfg.Limits.MaxAuthDataSize,
	})
	if err != nil {
		return fmt.Errorf("token verifier: %w", err)
	}
	store, err := policy.NewStore(cfg.Policy, log, reg)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	password, err := upstreamPassword(cfg.Upstream)
	if err != nil {
		return err
	}
	dialer, err := upstreamDialer(cfg.Upstream)
	if err != nil {
		return err
	}
	srv, err := proxy.New(cfg, proxy.Options{
		Dialer:           dialer,
		Logger:           log,
		Audit:            logs.audit,
		Registerer:       reg,
		Authenticator:    verifier,
		AllowAnonymous:   cfg.Auth.AllowAnonymous,
		ClockSkew:        cfg.Auth.ClockSkew,
		Policy:           proxy.StorePolicy(store),
		UpstreamPassword: password,
		ShutdownGrace:    grace,
	})
	if err != nil {
		return err
	}
	store.OnReload(func(*policy.Snapshot) { srv.Recheck() })

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	var bound listening

	go func() {
		if err := verifier.Run(ctx); err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("token keys: %w", err)
		}
	}()
	go func() {
		if err := store.Watch(ctx); err != nil && ctx.Err() == nil {
			log.Warn("policy watch stopped; reload with SIGHUP", "err", err)
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				_ = store.Reload() // which logs and counts a rejected policy itself
			case <-ctx.Done():
				return
			}
		}
	}()

	listeners, err := openListeners(cfg.Listeners, log)
	if err != nil {
		return err
	}
	for _, l := range listeners {
		if bound.MQTT == "" {
			bound.MQTT = l.ln.Addr().String()
		}
		log.Info("mqtt listener", "kind", l.kind, "address", l.ln.Addr().String(), "upstream", cfg.Upstream.Address)
		go func() {
			if err := srv.Serve(ctx, l.ln); err != nil {
				errc <- err
			}
		}()
	}
	var adminSrv *http.Server
	if cfg.Admin.Address != "" {
		ln, err := net.Listen("tcp", cfg.Admin.Address)
		if err != nil {
			return fmt.Errorf("listen admin.address: %w", err)
		}
		bound.Admin = ln.Addr().String()
		adminSrv = &http.Server{
			Handler: admin.Handler(reg, []admin.Check{
				{Name: "keys", Ready: func(context.Context) error { return verifier.Ready() }},
				{Name: "upstream", Ready: upstreamReachable(cfg.Upstream)},
			}),
			ReadHeaderTimeout: 5 * time.Second,
		}
		log.Info("admin listener", "address", bound.Admin)
		go func() {
			if err := adminSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("admin: %w", err)
			}
		}()
	}
	if ready != nil {
		ready <- bound
	}

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	log.Info("shutting down", "grace", grace)
	sctx, scancel := context.WithTimeout(context.Background(), grace)
	defer scancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		log.Warn("shutdown incomplete", "err", serr)
	}
	if adminSrv != nil {
		_ = adminSrv.Shutdown(sctx)
	}
	return err
}

// upstreamReachable is the readiness check for the broker.
func upstreamReachable(cfg proxy.UpstreamConfig) func(context.Context) error {
	return func(ctx context.Context) error {
		c, err := proxy.DialUpstream(ctx, &net.Dialer{}, cfg)
		if err != nil {
			return fmt.Errorf("dial %s: %w", cfg.Address, err)
		}
		return c.Close()
	}
}

func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "mqtt_authproxy_build_info",
		Help:        "Build information; the value is 1.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

type namedListener struct {
	kind string
	ln   net.Listener
}

// openListeners opens every configured client listener (SPEC 6).
func openListeners(c proxy.ListenersConfig, log *slog.Logger) ([]namedListener, error) {
	var out []namedListener
	closeAll := func() {
		for _, l := range out {
			l.ln.Close()
		}
	}
	if c.TCP != "" {
		ln, err := net.Listen("tcp", c.TCP)
		if err != nil {
			return nil, fmt.Errorf("listen listeners.tcp: %w", err)
		}
		out = append(out, namedListener{"tcp", ln})
	}
	if t := c.TLS; t.Address != "" {
		ln, err := listener.ListenTLS(t.Address, t.CertFile, t.KeyFile, t.ClientCAFile, listener.WithLogger(log.With("listener", "tls")))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen listeners.tls: %w", err)
		}
		out = append(out, namedListener{"tls", ln})
	}
	if w := c.WebSocket; w.Address != "" {
		var tlsCfg *tls.Config
		if w.CertFile != "" {
			r, err := listener.NewCertReloader(w.CertFile, w.KeyFile, listener.WithLogger(log.With("listener", "websocket")))
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("listeners.websocket: %w", err)
			}
			if tlsCfg, err = listener.TLSConfig(r, ""); err != nil {
				closeAll()
				return nil, fmt.Errorf("listeners.websocket: %w", err)
			}
		}
		ln, err := listener.ListenWebSocket(w.Address, w.Path, tlsCfg)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen listeners.websocket: %w", err)
		}
		out = append(out, namedListener{"websocket", ln})
	}
	return out, nil
}

// upstreamDialer dials the broker, over TLS when upstream.tls.enabled.
func upstreamDialer(c proxy.UpstreamConfig) (proxy.Dialer, error) {
	nd := &net.Dialer{Timeout: c.DialTimeout}
	if !c.TLS.Enabled {
		return nd, nil
	}
	cfg := &tls.Config{ServerName: c.TLS.ServerName, MinVersion: tls.VersionTLS12}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream.tls.caFile: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream.tls.caFile: no certificate in %s", c.TLS.CAFile)
		}
	}
	return &tls.Dialer{NetDialer: nd, Config: cfg}, nil
}
