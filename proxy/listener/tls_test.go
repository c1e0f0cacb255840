package listener

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writePair(t *testing.T, certFile, keyFile, cn string, mtime time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	return der
}

// SPEC 6: a renewed certificate is served without a restart; a broken one
// keeps the previous certificate in use. Both are logged.
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	first := writePair(t, certFile, keyFile, "first", time.Now().Add(-time.Minute))
	var logs bytes.Buffer
	r, err := NewCertReloader(certFile, keyFile, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	r.checkEvery = 0
	served := func() []byte {
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate[0]
	}
	if !bytes.Equal(served(), first) {
		t.Fatal("initial certificate not served")
	}
	second := writePair(t, certFile, keyFile, "second", time.Now())
	if !bytes.Equal(served(), second) {
		t.Fatal("renewed certificate not served after the files changed")
	}
	if !strings.Contains(logs.String(), "tls certificate reloaded") || !strings.Contains(logs.String(), "not_after=") {
		t.Errorf("renewal not logged with its expiry: %q", logs.String())
	}
	if err := os.WriteFile(certFile, []byte("half-written"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(certFile, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	if !bytes.Equal(served(), second) {
		t.Fatal("a broken certificate file replaced the working one")
	}
	served() // the same broken files: not warned about again
	if n := strings.Count(logs.String(), "level=WARN msg=\"tls certificate changed but not loaded"); n != 1 {
		t.Errorf("a certificate that did not load was warned about %d times, want once: %q", n, logs.String())
	}
	third := writePair(t, certFile, keyFile, "third", time.Now().Add(2*time.Minute))
	if !bytes.Equal(served(), third) {
		t.Fatal("a good pair after a broken one was not loaded")
	}
	if _, err := NewCertReloader(filepath.Join(dir, "missing.crt"), keyFile); err == nil {
		t.Error("missing certificate accepted at start")
	}
}
