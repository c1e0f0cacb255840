// Command mqtt-authproxy-bench measures mqtt-authproxy end to end against
// the alternatives a user could put in front of Mosquitto: nothing
// (direct), a plain byte relay, HAProxy in TCP mode (when installed). One
// run starts a real Mosquitto, the proxy binary (JWT authentication and a
// generated policy of 10 topic spaces × 10 templates and 1,000 role
// assignments), the relay and HAProxy, drives them interleaved with an
// MQTT v5 load generator (eclipse/paho.golang) and prints one markdown
// table: throughput (QoS 0/1, 64 B/4 KiB), end-to-end latency at a fixed
// rate, connection set-up rate, re-authentication rate and resident memory
// per idle connection, with proxy ÷ direct and proxy ÷ relay ratios.
//
//	go run ./cmd/mqtt-authproxy-bench            # full run, a few minutes
//	go run ./cmd/mqtt-authproxy-bench -smoke     # a few seconds (CI)
//
// Progress goes to stderr; the table and the machine line go to stdout. The
// exit status is non-zero if a target fails to start, a measurement fails,
// or QoS 1 loses a message.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// settings are the parameters of one run, from the flags.
type settings struct {
	smoke      bool
	duration   time.Duration // per cell: throughput, latency, connect, re-auth
	conns      int           // idle connections of the memory cell
	targets    []string
	cpuProfile string
	profileOf  string // the cell -cpuprofile records: "qos1-64" or "connect"
	profTarget string // the hop -cpuprofile records
	// freshTokens is how many never-seen tokens each of the fresh-token
	// connect and re-auth cells may use.
	freshTokens int
	proxyBin    string // "" = build ./cmd/mqtt-authproxy
	publishers  int
	window      int             // QoS 1 Publish calls in flight per publisher
	rate        int             // latency messages per second
	connectors  int             // concurrent connectors / re-authenticating connections
	rounds      int             // each cell is split into this many interleaved rounds
	cells       map[string]bool // the cells to measure (-cells)

	quiet      time.Duration // a drain ends after this long without a delivery
	drainLimit time.Duration // a drain ends after this long in any case
	settle     time.Duration // idle time before reading RSS
}

// parseFlags reads the command line. -smoke changes the defaults of
// -duration and -conns; explicit flags win.
func parseFlags(args []string, stderr io.Writer) (settings, error) {
	fs := flag.NewFlagSet("mqtt-authproxy-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s settings
	var targets, cells string
	fs.BoolVar(&s.smoke, "smoke", false, "tiny durations and counts: the whole run takes a few seconds (CI)")
	fs.DurationVar(&s.duration, "duration", 5*time.Second, "length of each throughput, latency, connect and re-auth cell (smoke: 100ms)")
	fs.IntVar(&s.conns, "conns", 10000, "idle connections for the memory cell (smoke: 200)")
	fs.StringVar(&targets, "targets", strings.Join(knownTargets(), ","), "comma-separated subset of "+strings.Join(knownTargets(), ","))
	fs.StringVar(&s.cpuProfile, "cpuprofile", "", "record the proxy's CPU profile (perf record) during the first proxy round of -profile-cell into this file")
	fs.StringVar(&s.profileOf, "profile-cell", profileQoS1, "the cell -cpuprofile records: "+profileQoS1+" (QoS 1, 64 B throughput) or "+profileConnect)
	fs.StringVar(&s.profTarget, "profile-target", targetProxy, "the hop -cpuprofile records: "+targetProxy+", "+targetProxyUDS+", "+targetRelay+" or "+targetRelayUDS)
	fs.StringVar(&s.proxyBin, "proxy-bin", "", "proxy binary to run (default: go build ./cmd/mqtt-authproxy into a temp dir)")
	fs.IntVar(&s.publishers, "publishers", 4, "publishers per throughput cell")
	fs.IntVar(&s.window, "window", 64, "QoS 1 Publish calls in flight per publisher")
	fs.IntVar(&s.rate, "rate", 2000, "messages per second of the latency cells")
	fs.IntVar(&s.connectors, "connectors", 16, "concurrent connectors (connect cell) and connections (re-auth cell)")
	fs.IntVar(&s.freshTokens, "fresh-tokens", 3000, "never-seen tokens for each of the new-token connect and re-auth cells, minted before the run (smoke: 50)")
	fs.IntVar(&s.rounds, "rounds", 3, "split each throughput, latency and connect cell into this many rounds, interleaving the targets (smoke: 1)")
	fs.StringVar(&cells, "cells", strings.Join(knownCells, ","), "comma-separated subset of the cells to measure, for a quicker A/B: "+strings.Join(knownCells, ",")+" ("+cellConnectNew+" also measures "+cellConnect+", the reference of its ratio)")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	s.quiet, s.drainLimit, s.settle = 500*time.Millisecond, 15*time.Second, 2*time.Second
	if s.smoke {
		if !set["duration"] {
			s.duration = 100 * time.Millisecond
		}
		if !set["conns"] {
			s.conns = 200
		}
		if !set["rounds"] {
			s.rounds = 1
		}
		if !set["fresh-tokens"] {
			s.freshTokens = 50
		}
		s.quiet, s.drainLimit, s.settle = 200*time.Millisecond, 5*time.Second, 100*time.Millisecond
	}
	want := map[string]bool{targetDirect: true} // Mosquitto runs anyway; it is the baseline of the ratios
	for _, t := range strings.Split(targets, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !slices.Contains(knownTargets(), t) {
			return s, fmt.Errorf("-targets: unknown target %q (want %s)", t, strings.Join(knownTargets(), ","))
		}
		want[t] = true
	}
	for _, t := range knownTargets() { // column order, whatever the flag's
		if want[t] {
			s.targets = append(s.targets, t)
		}
	}
	s.cells = map[string]bool{}
	for _, c := range strings.Split(cells, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		if !slices.Contains(knownCells, c) {
			return s, fmt.Errorf("-cells: unknown cell %q (want %s)", c, strings.Join(knownCells, ","))
		}
		s.cells[c] = true
	}
	if len(s.cells) == 0 {
		return s, errors.New("-cells names no cell")
	}
	if profiled := map[string]string{profileQoS1: cellThroughput, profileConnect: cellConnect}[s.profileOf]; s.cpuProfile != "" && profiled != "" &&
		!s.cells[profiled] && !(profiled == cellConnect && s.cells[cellConnectNew]) {
		return s, fmt.Errorf("-cpuprofile records the %s cell, which -cells leaves out", profiled)
	}
	switch {
	case !slices.Contains(profileTargets(), s.profTarget):
		return s, fmt.Errorf("-profile-target: want one of %s", strings.Join(profileTargets(), ", "))
	case s.profileOf != profileQoS1 && s.profileOf != profileConnect:
		return s, fmt.Errorf("-profile-cell: want %s or %s", profileQoS1, profileConnect)
	case s.duration <= 0 || s.duration > 2*time.Minute:
		return s, errors.New("-duration must be in (0, 2m]")
	case s.conns <= 0 || s.conns > 200000:
		return s, errors.New("-conns must be in [1, 200000]")
	case s.publishers <= 0 || s.publishers > 256:
		return s, errors.New("-publishers must be in [1, 256]")
	case s.window <= 0 || s.window > 1024:
		return s, errors.New("-window must be in [1, 1024]")
	case s.rate <= 0 || s.rate > 100000:
		return s, errors.New("-rate must be in [1, 100000]")
	case s.connectors <= 0 || s.connectors > 1024:
		return s, errors.New("-connectors must be in [1, 1024]")
	case s.freshTokens <= 0 || s.freshTokens > 100000:
		return s, errors.New("-fresh-tokens must be in [1, 100000]")
	case s.rounds <= 0 || s.rounds > 20 || s.duration/time.Duration(s.rounds) < 10*time.Millisecond:
		return s, errors.New("-rounds must be in [1, 20] and leave at least 10ms per round")
	}
	return s, nil
}

// The cells of a run, in the order they are measured; -cells picks some.
const (
	cellMemory     = "memory"
	cellThroughput = "throughput"
	cellLatency    = "latency"
	cellConnect    = "connect"
	cellConnectNew = "connect-new"
	cellReauth     = "reauth"
)

var knownCells = []string{cellMemory, cellThroughput, cellLatency, cellConnect, cellConnectNew, cellReauth}

// profileTargets are the hops -profile-target may name.
func profileTargets() []string {
	return []string{targetProxy, targetProxyUDS, targetRelay, targetRelayUDS, targetRelayEpollUDS}
}

func main() {
	if upstream := os.Getenv(relayEnv); upstream != "" {
		if os.Getenv(relayEpollEnv) != "" {
			os.Exit(runEpollRelay(upstream))
		}
		os.Exit(runRelay(upstream))
	}
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs the bench and returns the exit status.
func realMain(args []string, stdout, stderr io.Writer) int {
	s, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	rep, err := run(ctx, s, log)
	if rep != nil {
		rep.write(stdout)
	}
	if err != nil {
		log.Error("benchmark failed", "err", err)
		return 1
	}
	return 0
}
