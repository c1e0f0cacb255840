package listener

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// CertReloader serves a certificate from files and re-reads them when their
// modification time changes, checked at most once per second, so a renewed
// certificate (cert-manager, a mounted Secret) is used without a restart.
type CertReloader struct {
	certFile, keyFile string
	// checkEvery bounds how often the files are stat'ed. Default: 1s.
	checkEvery time.Duration

	log *slog.Logger // WithLogger; discards by default

	mu        sync.Mutex
	cert      *tls.Certificate
	modCert   time.Time
	modKey    time.Time
	lastCheck time.Time
	// failedCert and failedKey are the modification times of a pair that
	// did not load, not tried (nor warned about) again until one changes.
	failedCert, failedKey time.Time
}

// ReloaderOption configures a CertReloader.
type ReloaderOption func(*CertReloader)

// WithLogger logs each certificate reload, and each changed pair that
// could not be loaded (the previous one stays in use), on l.
func WithLogger(l *slog.Logger) ReloaderOption { return func(r *CertReloader) { r.log = l } }

// NewCertReloader loads the pair once; it fails if the files are unusable.
func NewCertReloader(certFile, keyFile string, opts ...ReloaderOption) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile, checkEvery: time.Second, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(r)
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *CertReloader) load() error {
	ci, err := os.Stat(r.certFile)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	ki, err := os.Stat(r.keyFile)
	if err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls key pair %s, %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.modCert, r.modKey = &cert, ci.ModTime(), ki.ModTime()
	return nil
}

// GetCertificate implements tls.Config.GetCertificate. A pair that fails to
// load keeps the previous certificate in use.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.lastCheck) >= r.checkEvery {
		r.lastCheck = now
		ci, cerr := os.Stat(r.certFile)
		ki, kerr := os.Stat(r.keyFile)
		if cerr == nil && kerr == nil && (!ci.ModTime().Equal(r.modCert) || !ki.ModTime().Equal(r.modKey)) &&
			(!ci.ModTime().Equal(r.failedCert) || !ki.ModTime().Equal(r.failedKey)) {
			// Keep the old pair if the new one is half-written: the
			// next change of either file tries again.
			if err := r.load(); err != nil {
				r.failedCert, r.failedKey = ci.ModTime(), ki.ModTime()
				r.log.Warn("tls certificate changed but not loaded; the previous one stays in use", "cert", r.certFile, "err", err)
			} else {
				attrs := []any{"cert", r.certFile}
				if r.cert.Leaf != nil {
					attrs = append(attrs, "not_after", r.cert.Leaf.NotAfter)
				}
				r.log.Info("tls certificate reloaded", attrs...)
			}
		}
	}
	return r.cert, nil
}

// TLSConfig returns a server tls.Config using r; clientCAFile, if set,
// requires and verifies client certificates.
func TLSConfig(r *CertReloader, clientCAFile string) (*tls.Config, error) {
	cfg := &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("client CA: no certificate found in " + clientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ListenTLS listens on addr with a reloading certificate.
func ListenTLS(addr, certFile, keyFile, clientCAFile string, opts ...ReloaderOption) (net.Listener, error) {
	r, err := NewCertReloader(certFile, keyFile, opts...)
	if err != nil {
		return nil, err
	}
	cfg, err := TLSConfig(r, clientCAFile)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, cfg), nil
}
