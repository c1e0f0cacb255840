package harness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Mosquitto is a broker process started for one test.
type Mosquitto struct {
	// Addr is the broker's 127.0.0.1:port.
	Addr string

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	out  bytes.Buffer
}

// MosquittoPath finds the mosquitto binary (Debian installs it in /usr/sbin,
// which is not on every PATH).
func MosquittoPath() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("mosquitto not found on PATH or in /usr/sbin: install it (apt-get install -y mosquitto)")
}

// StartMosquitto starts a broker on a free loopback port with the given
// extra configuration lines, waits until it accepts connections and stops it
// when the test ends.
func StartMosquitto(t testing.TB, extra ...string) *Mosquitto {
	t.Helper()
	m, err := startMosquitto(t.TempDir(), extra...)
	if err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	t.Cleanup(m.Stop)
	return m
}

// StartMosquittoIn is StartMosquitto for callers without a testing.TB (the
// bench and `make run`): dir holds the config file; the caller calls Stop.
func StartMosquittoIn(dir string, extra ...string) (*Mosquitto, error) {
	return startMosquitto(dir, extra...)
}

func startMosquitto(dir string, extra ...string) (*Mosquitto, error) {
	bin, err := MosquittoPath()
	if err != nil {
		return nil, err
	}
	var lastErr error
	// The free port is found by binding and releasing it, so another process
	// may take it first: retry with a new port.
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		m, err := launch(bin, dir, port, extra)
		if err == nil {
			return m, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func launch(bin, dir string, port int, extra []string) (*Mosquitto, error) {
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nmax_keepalive 65535\n", port)
	if os.Geteuid() == 0 {
		// As root mosquitto drops to its own user, which cannot read a
		// root-only temp dir.
		conf += "user root\n"
	}
	for _, l := range extra {
		conf += l + "\n"
	}
	path := filepath.Join(dir, "mosquitto-"+strconv.Itoa(port)+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("write mosquitto config: %w", err)
	}
	m := &Mosquitto{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{})}
	m.cmd = exec.Command(bin, "-c", path)
	m.cmd.Stdout = &lockedWriter{m: &m.mu, w: &m.out}
	m.cmd.Stderr = m.cmd.Stdout
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err == nil {
			c.Close()
			return m, nil
		}
		select {
		case <-m.done:
			return nil, fmt.Errorf("mosquitto exited at start: %s", m.Output())
		case <-ctx.Done():
			m.Stop()
			return nil, fmt.Errorf("mosquitto did not accept on %s within 10s: %s", m.Addr, m.Output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop kills the broker (like a crash: no goodbye to clients) and waits for it.
func (m *Mosquitto) Stop() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Kill()
	<-m.done
}

// Output returns what the broker logged.
func (m *Mosquitto) Output() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.String()
}

type lockedWriter struct {
	m *sync.Mutex
	w *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.m.Lock()
	defer l.m.Unlock()
	return l.w.Write(p)
}
