package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets the test binary serve as the relay child, as the bench
// binary does (startRelay re-executes os.Executable()).
func TestMain(m *testing.M) {
	if upstream := os.Getenv(relayEnv); upstream != "" {
		os.Exit(runRelay(upstream))
	}
	os.Exit(m.Run())
}

// TestSmoke runs the whole benchmark in smoke mode against a real
// Mosquitto, the relay, HAProxy when installed, and the proxy binary built
// from this module, and checks that every row was measured and QoS 1 lost
// nothing. It never looks at the figures themselves, which depend on the
// machine.
func TestSmoke(t *testing.T) {
	if _, err := lookBinary("mosquitto"); err != nil {
		t.Skip("mosquitto not installed:", err)
	}
	bin := buildProxyBinary(t)
	s, err := parseFlags([]string{"-smoke", "-proxy-bin", bin}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(t.Context(), s, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if rep == nil {
		t.Fatalf("no report: %v", err)
	}
	var out bytes.Buffer
	rep.write(&out)
	t.Logf("report:\n%s", out.String())
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	for _, want := range []string{targetDirect, targetRelay, targetProxy, targetRelayUDS, targetProxyUDS, targetRelayEpollUDS} {
		if !rep.has(want) {
			t.Errorf("no %s column", want)
		}
	}
	for _, label := range []string{
		"Throughput QoS 0, 64 B", "Throughput QoS 0, 4 KiB", "Throughput QoS 1, 64 B", "Throughput QoS 1, 4 KiB",
		"Hop CPU per message, QoS 1, 64 B",
		"Latency QoS 0, 64 B", "Latency QoS 1, 64 B",
		"CONNECT → CONNACK", "Re-authentication AUTH 0x19 → 0x00", "RSS per idle connection", "RSS with the idle connections open",
	} {
		if !strings.Contains(out.String(), "| "+label) {
			t.Errorf("no row %q", label)
		}
	}
	for _, r := range rep.rows {
		for _, target := range rep.targets {
			if r.failed[target] {
				t.Errorf("%s: %s failed", r.label, target)
			}
		}
		for _, proxy := range []string{targetProxy, targetProxyUDS} {
			if _, ok := r.values[proxy]; !ok {
				t.Errorf("%s: no %s figure", r.label, proxy)
			}
		}
	}
	for target, n := range rep.lost {
		if n != 0 {
			t.Errorf("%s lost %d QoS 1 messages", target, n)
		}
	}
	if !strings.Contains(out.String(), "- Machine: ") {
		t.Error("no machine line")
	}
}

// buildProxyBinary compiles ./cmd/mqtt-authproxy of this module.
func buildProxyBinary(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "mqtt-authproxy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/mqtt-authproxy")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/mqtt-authproxy: %v\n%s", err, out)
	}
	return bin
}

func TestParseFlags(t *testing.T) {
	s, err := parseFlags([]string{"-smoke", "-targets", "proxy,relay"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.targets, ","); got != "direct,relay,proxy" {
		t.Errorf("targets = %s, want direct added and column order", got)
	}
	if s.conns != 200 || s.rounds != 1 {
		t.Errorf("smoke defaults not applied: conns %d rounds %d", s.conns, s.rounds)
	}
	if s, _ := parseFlags([]string{"-smoke", "-conns", "50"}, io.Discard); s.conns != 50 {
		t.Errorf("explicit -conns lost under -smoke: %d", s.conns)
	}
	if len(s.cells) != len(knownCells) {
		t.Errorf("cells = %v, want all by default", s.cells)
	}
	if s, err := parseFlags([]string{"-cells", "connect, reauth"}, io.Discard); err != nil || len(s.cells) != 2 || !s.cells[cellConnect] || !s.cells[cellReauth] {
		t.Errorf("-cells connect,reauth: %v %v", s.cells, err)
	}
	for _, bad := range [][]string{{"-targets", "nginx"}, {"-duration", "0s"}, {"-rounds", "0"}, {"extra"},
		{"-cells", "bogus"}, {"-cells", ","}, {"-cells", "latency", "-cpuprofile", "p", "-profile-cell", "connect"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestReportTable(t *testing.T) {
	rep := newReport([]string{targetDirect, targetRelay, targetProxy})
	tp := rep.add("Throughput (msg/s)", fmtCount)
	tp.set(targetDirect, 20000)
	tp.set(targetRelay, 10000)
	tp.set(targetProxy, 5000)
	lat := rep.add("Latency p50 (µs)", fmtMicros)
	lat.delta = true
	lat.set(targetDirect, 80)
	lat.set(targetProxy, 230)
	lat.fail(targetRelay)
	rep.machine = "test"
	var out bytes.Buffer
	rep.write(&out)
	for _, want := range []string{
		"| Measurement | direct | relay | proxy | proxy ÷ direct | proxy ÷ relay | Notes |",
		"| Throughput (msg/s) | 20,000 | 10,000 | 5,000 | 0.25× | 0.50× |  |",
		"| Latency p50 (µs) | 80.0 | error | 230 | 2.88× | – | proxy − direct: +150 µs |",
		"- Machine: test",
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("missing line %q in\n%s", want, out.String())
		}
	}

	// With the Unix-socket hops, each proxy is judged against the relay
	// that reaches the broker the same way.
	rep = newReport([]string{targetDirect, targetRelay, targetProxy, targetRelayUDS, targetProxyUDS})
	lat = rep.add("Latency p50 (µs)", fmtMicros)
	lat.delta = true
	for target, v := range map[string]float64{targetDirect: 100, targetRelay: 200, targetProxy: 250, targetRelayUDS: 180, targetProxyUDS: 225} {
		lat.set(target, v)
	}
	out.Reset()
	rep.write(&out)
	for _, want := range []string{
		"| Measurement | direct | relay | proxy | relay-uds | proxy-uds | proxy ÷ direct | proxy ÷ relay | proxy-uds ÷ direct | proxy-uds ÷ relay-uds | Notes |",
		"| Latency p50 (µs) | 100 | 200 | 250 | 180 | 225 | 2.50× | 1.25× | 2.25× | 1.25× | proxy − direct: +150 µs; proxy-uds − direct: +125 µs |",
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("missing line %q in\n%s", want, out.String())
		}
	}
}
