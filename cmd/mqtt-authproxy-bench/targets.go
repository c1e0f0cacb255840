package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Target names, in the order of the table's columns.
const (
	targetDirect  = "direct"
	targetRelay   = "relay"
	targetHAProxy = "haproxy"
	targetProxy   = "proxy"
	// The same two hops reaching Mosquitto over its Unix socket instead of
	// loopback TCP (upstream.address: unix:PATH), as a sidecar may.
	targetRelayUDS = "relay-uds"
	targetProxyUDS = "proxy-uds"
	// The byte relay as one edge-triggered epoll loop (relay_epoll_linux.go),
	// reaching Mosquitto over its Unix socket.
	targetRelayEpollUDS = "relay-epoll-uds"
)

// knownTargets lists every target in column order.
func knownTargets() []string {
	return []string{targetDirect, targetRelay, targetHAProxy, targetProxy, targetRelayUDS, targetProxyUDS, targetRelayEpollUDS}
}

// startTimeout bounds how long any target may take to accept its first
// CONNECT.
const startTimeout = 30 * time.Second

// target is one way for clients to reach the broker.
type target struct {
	name string
	addr string
	jwt  bool     // clients authenticate with OAUTH2-JWT (only the proxy)
	proc *process // whose RSS is measured: the hop, or the broker for direct
	// socket is the broker's Unix socket (direct only).
	socket string
	hop    bool // proc sits between client and broker (its CPU is reported)

	// fdsPerConn is how many file descriptors proc holds per client
	// connection, which bounds the memory cell under RLIMIT_NOFILE.
	fdsPerConn int
}

// token returns the CONNECT token a client of t sends: the i-th bench token
// for the proxy, none for the others.
func (t *target) token(id *identity, i int) string {
	if t.jwt {
		return id.token(i)
	}
	return ""
}

// probe checks that t answers a CONNECT with CONNACK 0x00.
func (t *target) probe(id *identity) error {
	nc, err := net.DialTimeout("tcp", t.addr, time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := rawConnect(nc, connectPacket("bench-probe", t.token(id, 0), 30), 5*time.Second); err != nil {
		return err
	}
	_, _ = io.WriteString(nc, disconnectPacket)
	return nil
}

// mosquittoConf holds the broker settings every run adds: Nagle off (as
// the proxy and the relay have it), unlimited connections, and queues deep
// enough never to drop a QoS 1 message the bench has outstanding (at most
// deliveryWindow per publisher). max_inflight_messages stays finite:
// mosquitto 2.0.11 with 0 ("unlimited") stalls deliveries for tens of
// milliseconds at a time.
const mosquittoConf = "set_tcp_nodelay true\nmax_connections -1\nmax_queued_messages 100000\nmax_inflight_messages 100\n"

// startMosquitto starts a broker on a free loopback port (and, withSocket,
// on a Unix socket in dir) with its config in dir (a copy of
// test/harness.StartMosquittoIn, which imports the proxy package: the bench
// must build while the proxy does not).
func startMosquitto(dir string, withSocket bool) (*target, error) {
	bin, err := lookBinary("mosquitto")
	if err != nil {
		return nil, fmt.Errorf("mosquitto: %w (apt-get install -y mosquitto)", err)
	}
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		_, port, _ := net.SplitHostPort(addr)
		conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\nmax_keepalive 65535\n", port)
		if os.Geteuid() == 0 {
			// As root mosquitto drops to its own user, which cannot read a
			// root-only temp dir.
			conf += "user root\n"
		}
		conf += mosquittoConf
		socket := ""
		if withSocket {
			socket = filepath.Join(dir, "mosquitto.sock")
			conf += "listener 0 " + socket + "\n"
		}
		path := filepath.Join(dir, "mosquitto-"+port+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return nil, fmt.Errorf("write mosquitto config: %w", err)
		}
		p, err := startProcess("mosquitto", exec.Command(bin, "-c", path))
		if err != nil {
			return nil, err
		}
		t := &target{name: targetDirect, addr: addr, socket: socket, proc: p, fdsPerConn: 1}
		ready := func() error {
			if err := t.probe(nil); err != nil {
				return err
			}
			if socket == "" {
				return nil
			}
			c, err := net.Dial("unix", socket)
			if err != nil {
				return err
			}
			return c.Close()
		}
		if lastErr = p.waitReady(startTimeout, ready); lastErr == nil {
			return t, nil
		}
	}
	return nil, fmt.Errorf("mosquitto: %w", lastErr)
}

// startProxy runs the proxy binary bin (`serve`) as target name in front of
// upstream (host:port or unix:PATH) with JWT authentication against the test
// issuer and the generated policy, and waits until a JWT CONNECT succeeds
// through it.
func startProxy(name, bin, dir, upstream string, id *identity) (*target, error) {
	// One policy file per proxy: rewriting a file another running proxy
	// watches would make it reload mid-measurement.
	policyPath := filepath.Join(dir, name+"-policy.json")
	if err := writePolicy(policyPath); err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		cfgPath := filepath.Join(dir, name+".yaml")
		if err := writeProxyConfig(cfgPath, addr, upstream, id.issuer.URL(), policyPath); err != nil {
			return nil, err
		}
		p, err := startProcess(name, exec.Command(bin, "serve", "--config", cfgPath, "--log-level", "warn"))
		if err != nil {
			return nil, err
		}
		t := &target{name: name, addr: addr, jwt: true, proc: p, hop: true, fdsPerConn: 2}
		lastErr = p.waitReady(startTimeout, func() error { return t.probe(id) })
		if lastErr == nil {
			return t, nil
		}
		if !strings.Contains(lastErr.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("%s: %w", name, lastErr)
}

// startRelay re-executes this program as the byte relay (see relay.go),
// target name, in front of upstream (host:port or unix:PATH), so the relay's
// CPU and memory are measured apart from the load generator's.
func startRelay(name, upstream string, epoll bool) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("relay: find own executable: %w", err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), relayEnv+"="+upstream)
	if epoll {
		cmd.Env = append(cmd.Env, relayEpollEnv+"=1")
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	p, err := startProcess(name, cmd)
	if err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() { // keep draining so the child never blocks on stdout
		}
	}()
	var addr string
	select {
	case addr = <-lines:
	case <-time.After(startTimeout):
	}
	if addr == "" {
		p.Stop()
		return nil, fmt.Errorf("relay did not report its address: %s", p.output())
	}
	// Two sockets, and a splice pipe (two fds) per direction while io.Copy
	// waits for data.
	t := &target{name: name, addr: addr, proc: p, hop: true, fdsPerConn: 6}
	if epoll {
		t.fdsPerConn = 2 // no splice pipes
	}
	if err := p.waitReady(startTimeout, func() error { return t.probe(nil) }); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	return t, nil
}

// errNotInstalled marks an optional target whose program is absent.
var errNotInstalled = errors.New("not installed")

// startHAProxy runs HAProxy in TCP mode in front of upstream, allowing
// maxConn concurrent connections.
func startHAProxy(dir, upstream string, maxConn int) (*target, error) {
	bin, err := lookBinary("haproxy")
	if err != nil {
		return nil, fmt.Errorf("haproxy: %w: %w", errNotInstalled, err)
	}
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		conf := fmt.Sprintf(`global
    maxconn %[1]d

defaults
    mode tcp
    maxconn %[1]d
    timeout connect 5s
    timeout client 1h
    timeout server 1h

frontend mqtt
    bind %[2]s
    default_backend broker

backend broker
    server mosquitto %[3]s
`, maxConn, addr, upstream)
		path := filepath.Join(dir, "haproxy.cfg")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return nil, fmt.Errorf("write haproxy config: %w", err)
		}
		p, err := startProcess("haproxy", exec.Command(bin, "-f", path, "-db"))
		if err != nil {
			return nil, err
		}
		t := &target{name: targetHAProxy, addr: addr, proc: p, hop: true, fdsPerConn: 2}
		if lastErr = p.waitReady(startTimeout, func() error { return t.probe(nil) }); lastErr == nil {
			return t, nil
		}
	}
	return nil, fmt.Errorf("haproxy: %w", lastErr)
}

// buildProxy compiles ./cmd/mqtt-authproxy of the enclosing module (found
// with `go env GOMOD`) into dir and returns the binary's path.
func buildProxy(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the mqtt-authproxy module: pass -proxy-bin")
	}
	bin := filepath.Join(dir, "mqtt-authproxy")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/mqtt-authproxy")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mqtt-authproxy: %w\n%s", err, out)
	}
	return bin, nil
}
