package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy/audit"
)

// Authenticator verifies MQTT enhanced-authentication data; authz/token's
// Verifier implements it.
type Authenticator interface {
	SupportsMethod(method string) bool
	Verify(ctx context.Context, method string, data []byte) (*authz.Identity, error)
}

// Grants answers authorization questions for one connection's identity.
// Implementations must be safe for concurrent use and should not allocate:
// they run on every packet. A Grants value's answer must depend on the
// topic only: a connection reuses the decision for its last topic until it
// gets new Grants (decisionCache).
type Grants interface {
	Publish(topic string) authz.Decision
	Subscribe(filter string) authz.Decision
	Receive(topic string) authz.Decision
}

// Policy compiles the Grants of an identity; clientID is the client id the
// client chose (before session isolation), used by ${client.clientId}.
type Policy interface {
	Grants(id *authz.Identity, clientID string) Grants
}

// Dialer dials the upstream broker; net.Dialer and tls.Dialer satisfy it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Secret is a byte string that never prints (STYLE 13).
type Secret []byte

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String implements fmt.Stringer so %v does not print the value.
func (Secret) String() string { return "[redacted]" }

// SecretString is a Secret as configuration decodes it (a string).
type SecretString string

// LogValue implements slog.LogValuer.
func (SecretString) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// String implements fmt.Stringer so %v does not print the value.
func (SecretString) String() string { return "[redacted]" }

// Options are the replaceable parts of a Server. Nil fields get defaults.
type Options struct {
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger
	// Audit receives the audit log (SPEC 6, package audit): one JSON line
	// per Write, for every authentication result, denial and disconnect.
	// It must not block (a logsink.Writer). Default: nil, no audit log.
	Audit io.Writer
	// Registerer receives the proxy's metrics. Default: none.
	Registerer prometheus.Registerer
	// Dialer dials the upstream. Default: net.Dialer.
	Dialer Dialer
	// Authenticator verifies OAUTH2-JWT / CUSTOM-JWT data. Nil admits only
	// anonymous clients, and only when AllowAnonymous is set.
	Authenticator Authenticator
	// AllowAnonymous admits CONNECTs without an Authentication Method as
	// the principal "anonymous" (SPEC 2, auth.allowAnonymous).
	AllowAnonymous bool
	// ClockSkew is added to a token's exp before the connection is ended
	// (SPEC 2.3). Default: 0.
	ClockSkew time.Duration
	// Policy authorizes PUBLISH, SUBSCRIBE, Will and delivery. Nil allows
	// everything: only for tests and the foundation stage.
	Policy Policy
	// UpstreamPassword is sent as the upstream CONNECT password.
	UpstreamPassword Secret
	// ShutdownGrace bounds Shutdown. Default: 10s.
	ShutdownGrace time.Duration
}

// Server is the proxy: it serves client connections on listeners.
type Server struct {
	cfg     Config
	opts    Options
	log     *slog.Logger
	audit   *audit.Logger
	metrics *metrics

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool
	// busyLogged is when the last "connection refused" line for
	// limits.maxConnections was written; busySince counts the refusals
	// since (one line a second, not one per refused socket).
	busyLogged time.Time
	// overLimit counts the connections of conns admitted over
	// limits.maxConnections to be refused (conn.overLimit).
	overLimit int
	busySince int
	wg        sync.WaitGroup
	shutdown  chan struct{}

	// loops relay connections whose sockets are both plain (loop_linux.go).
	loops    []*eventLoop
	nextLoop atomic.Uint32
	// policyEpoch counts Recheck calls (policy reloads); see session.epoch.
	policyEpoch atomic.Uint64
	// native: the broker's address for connections that live on a loop
	// from accept (native_linux.go); unset when they cannot.
	native nativeTarget
}

// New validates cfg and returns a Server.
func New(cfg Config, opts Options) (*Server, error) {
	if err := cfg.validateProxy(); err != nil {
		return nil, fmt.Errorf("proxy config: %w", err)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.Logger == nil {
		opts.Logger = discard
	}
	if opts.Dialer == nil {
		opts.Dialer = &net.Dialer{Timeout: cfg.Upstream.DialTimeout}
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 10 * time.Second
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg:      cfg,
		opts:     opts,
		log:      opts.Logger,
		audit:    audit.New(opts.Audit),
		metrics:  m,
		conns:    make(map[*conn]struct{}),
		shutdown: make(chan struct{}),
		loops:    newLoops(),
		native:   newNativeTarget(cfg, opts),
	}, nil
}

// Serve accepts connections on ln until ctx is done or Shutdown is called,
// then closes ln. Temporary accept errors back off from 5 ms to 1 s, as
// net/http does.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if served, err := s.serveOnLoops(ctx, ln); served {
		return err
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	go func() {
		select {
		case <-s.shutdown:
			ln.Close()
		case <-ctx.Done():
		}
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() || ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed", "err", err, "retry_in", backoff)
				s.metrics.acceptErrors.Inc()
				select {
				case <-time.After(backoff):
					continue
				case <-ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		s.ServeConn(ctx, nc)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// ServeConn serves one client connection in its own goroutine.
func (s *Server) ServeConn(ctx context.Context, nc net.Conn) {
	c := newConn(s, nc)
	if !s.admitConn(c) {
		nc.Close()
		return
	}
	go func() {
		defer s.forget(c)
		c.serve(ctx)
	}()
}

// admitConn counts c in, unless the server is closing; the caller then
// closes its socket. A connection over limits.maxConnections is admitted
// all the same, marked overLimit, while fewer than maxOverLimitAnswers are:
// its handshake reads the CONNECT and answers CONNACK 0x97 Quota exceeded,
// which a client can tell from a network failure (answering before its
// CONNECT is read could reset the connection and lose the CONNACK). Beyond
// that it is refused too.
func (s *Server) admitConn(c *conn) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.metrics.connects.WithLabelValues(resultServerBusy).Inc()
		return false
	}
	over := s.cfg.Limits.MaxConnections > 0 && len(s.conns)-s.overLimit >= s.cfg.Limits.MaxConnections
	refused, logNow := 0, false
	if over {
		s.busySince++
		if now := time.Now(); now.Sub(s.busyLogged) >= time.Second {
			refused, logNow = s.busySince, true
			s.busyLogged, s.busySince = now, 0
		}
	}
	admit := !over || s.overLimit < maxOverLimitAnswers
	if admit {
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		if over {
			c.overLimit = true
			s.overLimit++
		}
	}
	s.mu.Unlock()
	if !admit { // an answered one is counted as its refusal is sent
		s.metrics.connects.WithLabelValues(resultServerBusy).Inc()
	}
	if logNow {
		s.log.Warn("connections refused", "reason", "limits.maxConnections reached", "refused", refused,
			"last_remote", c.nc.RemoteAddr().String())
	}
	return admit
}

// maxOverLimitAnswers bounds the connections over limits.maxConnections
// being answered at once: each holds a descriptor and its state until its
// CONNECT arrives or the connect timeout passes. Beyond it, sockets are
// closed unanswered.
const maxOverLimitAnswers = 64

// forget counts c out once it has ended.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if c.overLimit {
		s.overLimit--
	}
	s.mu.Unlock()
	s.wg.Done()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting, sends DISCONNECT 0x8B (Server shutting down) to
// every client, closes upstream connections cleanly and waits for the
// connections to end, at most until ctx is done or the grace period passes.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.shutdown)
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.stop(endShutdown())
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	ctx, cancel := context.WithTimeout(ctx, s.opts.ShutdownGrace)
	defer cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.forceClose()
		}
		s.mu.Unlock()
		return fmt.Errorf("shutdown: %d connections still open after grace period: %w", len(conns), ctx.Err())
	}
}

// Recheck re-evaluates every live connection against the current policy
// (SPEC 3.6): a connection holding a subscription that is no longer allowed
// is ended with DISCONNECT 0x87 naming the filter. Call it after a policy
// reload.
func (s *Server) Recheck() {
	// Before looking at the connections: one whose handshake compiled
	// grants from the replaced policy sees the new epoch once it relays
	// (established), or relays already and is re-checked here.
	s.policyEpoch.Add(1)
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.recheck()
	}
}

// ConnectionCount returns the number of live client connections, not
// counting those over limits.maxConnections that are being refused.
func (s *Server) ConnectionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns) - s.overLimit
}
