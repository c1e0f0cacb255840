package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token/tokentest"
	"github.com/mqtt-authproxy/mqtt-authproxy/proxy"
	"github.com/mqtt-authproxy/mqtt-authproxy/test/harness"
)

// waitLog returns the value of key in the first JSON log line with msg,
// waiting until it appears.
func waitLog(t *testing.T, logs *harness.SyncBuffer, msg, key string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
				if v, ok := m[key].(string); ok {
					return v
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q log line with %q:\n%s", msg, key, logs.String())
	return ""
}

// SPEC 6: serve runs the whole composition (listener, admin endpoints,
// JWT auth, policy) and on SIGTERM (the cancelled signal context) sends
// DISCONNECT 0x8B to clients and exits 0 within the grace period.
func TestServeAndGracefulShutdown(t *testing.T) {
	logs := &harness.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idp, exit := startServe(ctx, t, logs)
	mqttAddr := waitLog(t, logs, "mqtt listener", "address")
	adminAddr := waitLog(t, logs, "admin listener", "address")

	var readyz string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + adminAddr + "/readyz"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			readyz = fmt.Sprintf("%d %s", resp.StatusCode, b)
			if resp.StatusCode == 200 {
				break
			}
		}
	}
	if !strings.HasPrefix(readyz, "200") {
		t.Fatalf("/readyz never became ready: %s", readyz)
	}
	const p = "6f1d0000-0000-0000-0000-000000000001"
	tok, err := idp.MintEntra("11111111-2222-3333-4444-555555555555", p, 2, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := harness.MustConnect(t, mqttAddr, harness.ClientOptions{ClientID: "srv", CleanStart: true,
		AuthMethod: "OAUTH2-JWT", AuthData: []byte(tok), NoAutoClose: true})
	// The proxy counts the connection just after its CONNACK has left, so
	// the client may see the CONNACK first: poll.
	wants := []string{"mqtt_authproxy_build_info", `mqtt_authproxy_connects_total{result="success"} 1`, "mqtt_authproxy_connections_active 1",
		"mqtt_authproxy_policy_last_reload_successful 1", "mqtt_authproxy_log_lines_dropped_total 0",
		`mqtt_authproxy_packets_total{direction="from_client",type="connect"} 1`,
		`mqtt_authproxy_packets_total{direction="from_upstream",type="connack"} 1`}
	var missing []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + adminAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		missing = missing[:0]
		for _, want := range wants {
			if !strings.Contains(string(body), want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range missing {
		t.Errorf("/metrics lacks %q", want)
	}

	start := time.Now()
	cancel()
	d, closed := c.WaitClosed(5 * time.Second)
	if !closed || d == nil || d.ReasonCode != packets.DisconnectServerShuttingDown {
		t.Errorf("client: closed %v DISCONNECT %+v, want 0x8B", closed, d)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("serve exited %d, want 0\n%s", code, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not exit within 10 s of SIGTERM")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %s, more than the 5 s grace", took)
	}
	if strings.Contains(logs.String(), tok[strings.LastIndex(tok, ".")+1:]) {
		t.Error("the token's signature appears in serve's logs")
	}
}

// startServe runs `serve` with a valid configuration in front of a new
// Mosquitto, trusting the identity provider it returns, its JSON log going
// to stderr, until ctx ends; the channel gets its exit code. extra flags
// come last, so they win.
func startServe(ctx context.Context, t *testing.T, stderr io.Writer, extra ...string) (*tokentest.Issuer, <-chan int) {
	return startServeFor(ctx, t, harness.StartMosquitto(t), stderr, extra...)
}

// startServeFor is startServe in front of broker.
func startServeFor(ctx context.Context, t *testing.T, broker *harness.Mosquitto, stderr io.Writer, extra ...string) (*tokentest.Issuer, <-chan int) {
	idp, err := tokentest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	_, path := validConfig(t)
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, append([]string{"serve", "--config", path, "--log-format", "json", "--shutdown-grace", "5s",
			"--set", "upstream.address=" + broker.Addr, "--set", "admin.address=127.0.0.1:0",
			"--set", "auth.entra.authority=" + idp.URL()}, extra...), io.Discard, stderr)
	}()
	return idp, exit
}

// stallingWriter passes writes to logs until stall is closed, then blocks
// them until release is closed: a log pipe nobody reads.
type stallingWriter struct {
	logs           *harness.SyncBuffer
	stall, release chan struct{}
}

func (w *stallingWriter) Write(p []byte) (int, error) {
	select {
	case <-w.stall:
		<-w.release
	default:
	}
	return w.logs.Write(p)
}

// Audit lines are written from the event loop's thread; a log output that
// stops taking lines must not stop the connections (proxy/logsink), and
// the lines it was late for are written once it takes them again.
func TestServeKeepsServingWhileTheLogOutputStalls(t *testing.T) {
	logs := &harness.SyncBuffer{}
	out := &stallingWriter{logs: logs, stall: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idp, exit := startServe(ctx, t, out)
	mqttAddr := waitLog(t, logs, "mqtt listener", "address")
	tok, err := idp.MintEntra("11111111-2222-3333-4444-555555555555", "6f1d0000-0000-0000-0000-000000000001", 2, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	close(out.stall)
	const clients = 20
	for i := range clients {
		// Each CONNECT writes an audit line.
		harness.MustConnect(t, mqttAddr, harness.ClientOptions{ClientID: fmt.Sprintf("stall-%d", i), CleanStart: true,
			AuthMethod: "OAUTH2-JWT", AuthData: []byte(tok)})
	}
	close(out.release)
	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if n := strings.Count(logs.String(), `"event":"authentication","principal":"6f1d0000-0000-0000-0000-000000000001"`); n != clients {
		t.Errorf("%d authentication audit lines after the output took lines again, want %d:\n%s", n, clients, logs.String())
	}
}

// /readyz's upstream check dials the broker the way the proxy does, Unix
// socket included.
func TestUpstreamReachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "broker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	for _, tc := range []struct {
		address string
		ready   bool
	}{
		{"unix:" + sock, true},
		{tcp.Addr().String(), true},
		{"unix:" + filepath.Join(t.TempDir(), "none.sock"), false},
	} {
		cfg := proxy.DefaultConfig().Upstream
		cfg.Address = tc.address
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := upstreamReachable(cfg)(ctx)
		cancel()
		if (err == nil) != tc.ready {
			t.Errorf("%s: err = %v, want ready %v", tc.address, err, tc.ready)
		}
	}
}

// SPEC 6: the audit log is JSON, one line per authentication result,
// whatever the process log's format and level, and can go to its own file
// or be turned off.
func TestAuditLogDestinations(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	tests := []struct {
		name      string
		flags     []string
		inFile    bool // the lines go to file, not stderr
		wantLines int  // of two CONNECTs (one allowed, one refused) and a shutdown
	}{
		{"stderr beside a text log at warn", []string{"--log-format", "text", "--log-level", "warn"}, false, 3},
		{"a file", []string{"--log-level", "error", "--audit-log", file}, true, 3},
		{"off", []string{"--audit-log", "off"}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &harness.SyncBuffer{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// The listener's address is logged at info, which some of these
			// levels hide: give it one.
			mqttAddr := freeAddr(t)
			idp, exit := startServe(ctx, t, logs, append([]string{"--set", "listeners.tcp=" + mqttAddr}, tt.flags...)...)
			waitListening(t, mqttAddr)
			tok, err := idp.MintEntra("11111111-2222-3333-4444-555555555555", "6f1d0000-0000-0000-0000-000000000001", 2, nil, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			harness.MustConnect(t, mqttAddr, harness.ClientOptions{ClientID: "audited", CleanStart: true,
				AuthMethod: "OAUTH2-JWT", AuthData: []byte(tok)})
			if _, err := harness.Connect(t, mqttAddr, harness.ClientOptions{ClientID: "refused", CleanStart: true,
				AuthMethod: "OAUTH2-JWT", AuthData: []byte("not-a-token")}); err == nil {
				t.Fatal("a bad token connected")
			}
			cancel()
			if code := <-exit; code != 0 {
				t.Fatalf("serve exited %d:\n%s", code, logs.String())
			}
			out := logs.String()
			if tt.inFile {
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				if n := len(harness.AuditLines(out)); n != 0 {
					t.Errorf("%d audit lines on stderr, want them in the file only", n)
				}
				out = string(b)
			}
			got := harness.AuditLines(out)
			if len(got) != tt.wantLines {
				t.Fatalf("%d audit lines, want %d:\n%s", len(got), tt.wantLines, out)
			}
			// In any order: the refusal's line follows its CONNACK, and may
			// come after the shutdown's disconnect line.
			var pairs []string
			for _, m := range got {
				pairs = append(pairs, fmt.Sprintf("%v/%v/%v", m["event"], m["client_id"], m["decision"]))
			}
			slices.Sort(pairs)
			if want := []string{"authentication/audited/allow", "authentication/refused/deny", "disconnect/audited/"}; tt.wantLines > 0 && !slices.Equal(pairs, want) {
				t.Errorf("audit lines (event/client_id/decision) %v, want %v", pairs, want)
			}
		})
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("nothing listens on %s", addr)
}

// SPEC 3.5: the upstream password may come from upstream.password, as an
// environment variable from a secret; the broker sees it, the client never
// sends it, and a wrong one refuses the client.
func TestUpstreamPasswordFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	if out, err := exec.Command("mosquitto_passwd", "-b", "-c", pwFile, "proxy", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	broker := harness.StartMosquitto(t, "allow_anonymous false", "password_file "+pwFile)
	for _, tt := range []struct {
		password string
		wantOK   bool
	}{{"s3cret", true}, {"wrong", false}} {
		t.Run(tt.password, func(t *testing.T) {
			t.Setenv("MQTT_AUTHPROXY_UPSTREAM_PASSWORD", tt.password)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := &harness.SyncBuffer{}
			idp, exit := startServeFor(ctx, t, broker, logs, "--set", "upstream.username=proxy")
			mqttAddr := waitLog(t, logs, "mqtt listener", "address")
			tok, err := idp.MintEntra("11111111-2222-3333-4444-555555555555", "6f1d0000-0000-0000-0000-000000000001", 2, nil, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			c, err := harness.Connect(t, mqttAddr, harness.ClientOptions{ClientID: "pw", CleanStart: true,
				AuthMethod: "OAUTH2-JWT", AuthData: []byte(tok)})
			if (err == nil) != tt.wantOK {
				t.Errorf("connect: err %v (CONNACK %+v), want success %v", err, c.Connack, tt.wantOK)
			}
			if strings.Contains(logs.String(), tt.password) {
				t.Errorf("the upstream password appears in serve's logs")
			}
			cancel()
			<-exit
		})
	}
}

// SPEC 3.6: SIGHUP reloads the policy, for set-ups where the file watcher
// sees nothing (a file system without inotify). The file is left as it is,
// so the watcher, which reloads only changed content, does not reload it;
// only the signal can.
func TestSighupReloadsThePolicy(t *testing.T) {
	logs := &harness.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, exit := startServe(ctx, t, logs)
	waitLog(t, logs, "mqtt listener", "address") // logged after the SIGHUP handler is in place
	adminAddr := waitLog(t, logs, "admin listener", "address")
	const reloaded = `mqtt_authproxy_policy_reloads_total{result="success"} 1`
	if body := scrape(t, adminAddr); strings.Contains(body, reloaded) {
		t.Fatalf("reloaded before the signal:\n%s", body)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(scrape(t, adminAddr), reloaded); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no policy reload within 5 s of SIGHUP\n%s", logs.String())
		}
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Errorf("serve exited %d, want 0", code)
	}
}

// scrape returns the admin listener's /metrics.
func scrape(t *testing.T, adminAddr string) string {
	t.Helper()
	resp, err := http.Get("http://" + adminAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
