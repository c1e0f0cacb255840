package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bench is the state of one run: what is measured, against which targets,
// and what went wrong so far.
type bench struct {
	s       settings
	id      *identity
	log     *slog.Logger
	rep     *report
	targets []*target // started, in column order
	nofile  uint64    // RLIMIT_NOFILE of the bench and its children
	errs    []error
}

// run performs one benchmark run and returns its report; the error joins
// every failure (a target that did not start, a failed cell, QoS 1 loss).
// The report is nil only if nothing could be measured.
func run(ctx context.Context, s settings, log *slog.Logger) (*report, error) {
	began := time.Now()
	nofile, err := raiseNoFile()
	if err != nil {
		log.Warn("could not raise RLIMIT_NOFILE", "err", err)
	}
	log.Info("file descriptor limit", "RLIMIT_NOFILE", nofile)
	dir, err := os.MkdirTemp("", "mqtt-authproxy-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	id, err := newIdentity(4, time.Hour)
	if err != nil {
		return nil, err
	}
	defer id.Close()
	if s.cells[cellConnectNew] || s.cells[cellReauth] { // the cells that use them
		mintStart := time.Now()
		if err := id.mintFresh(s.freshTokens, time.Hour); err != nil {
			return nil, err
		}
		log.Info("minted fresh tokens", "n", 2*s.freshTokens, "took", time.Since(mintStart).Round(time.Millisecond))
	}

	b := &bench{s: s, id: id, log: log, rep: newReport(nil), nofile: nofile}
	b.rep.machine = machineInfo()
	failed, err := b.startTargets(ctx, dir)
	defer b.stopTargets()
	if err != nil {
		return nil, err
	}
	b.rep.params = fmt.Sprintf("%v per cell, split into %d interleaved round(s); throughput: %d publishers (QoS 1: %d Publish calls in flight each; at most %d messages undelivered each) → 1 subscriber; "+
		"latency: 64 B at %s msg/s from 1 publisher, first 5 %% of samples dropped; connect and re-auth: %d concurrent; "+
		"memory: %s idle connections, VmRSS after %v; policy: %d topic spaces × %d templates, %s role assignments, topics match the last template",
		s.duration, s.rounds, s.publishers, s.window, deliveryWindow, fmtCount(float64(s.rate)), s.connectors, fmtCount(float64(s.conns)), s.settle,
		policySpaces, policyTemplates, fmtCount(policyAssignments))

	// Rows in display order; measured in the order below, memory first
	// while every process is fresh. -cells leaves some out.
	want := s.cells
	cells := []throughputCell{{0, 64}, {0, 4096}, {1, 64}, {1, 4096}}
	var rateRows, cpuRows []*row
	if want[cellThroughput] {
		for _, c := range cells {
			rateRows = append(rateRows, b.rep.add("Throughput "+c.String()+" (msg/s delivered)", fmtCount))
		}
		for _, c := range cells {
			cpuRows = append(cpuRows, b.rep.add("Hop CPU per message, "+c.String()+" (µs)", fmtMicros))
		}
	}
	latRows := map[byte][3]*row{}
	if want[cellLatency] {
		for _, qos := range []byte{0, 1} {
			var rs [3]*row
			for i, p := range []string{"p50", "p90", "p99"} {
				rs[i] = b.rep.add(fmt.Sprintf("Latency QoS %d, 64 B @ %s msg/s, %s (µs)", qos, fmtCount(float64(s.rate)), p), fmtMicros)
				rs[i].delta = true
			}
			latRows[qos] = rs
		}
	}
	var connRow, connCPURow, freshRow, freshCPURow, reauthRow, memRow, memTotalRow *row
	if want[cellConnect] || want[cellConnectNew] {
		// The new-token cell's ratio is to the anonymous direct rate.
		connRow = b.rep.add(fmt.Sprintf("CONNECT → CONNACK, %d connectors (/s)", s.connectors), fmtCount)
		connRow.note("proxies: JWT (RS256) + upstream CONNECT, each connector reusing its token (reconnects); others: anonymous")
		connCPURow = b.rep.add("Hop CPU per CONNECT (µs)", fmtMicros)
	}
	if want[cellConnectNew] {
		freshRow = b.rep.add(fmt.Sprintf("CONNECT → CONNACK, a new token each time, %d connectors (/s)", s.connectors), fmtCount)
		freshRow.note("proxies only, every token verified in full (%s tokens each); direct: the anonymous figure above", fmtCount(float64(s.freshTokens)))
		freshCPURow = b.rep.add("Hop CPU per CONNECT, a new token each time (µs)", fmtMicros)
	}
	if want[cellReauth] {
		reauthRow = b.rep.add(fmt.Sprintf("Re-authentication AUTH 0x19 → 0x00, a new token each time, %d connections (/s)", s.connectors), fmtCount)
		reauthRow.note("OAUTH2-JWT: proxies only (%s tokens each)", fmtCount(float64(s.freshTokens)))
	}
	if want[cellMemory] {
		memRow = b.rep.add(fmt.Sprintf("RSS per idle connection, %s connections (KiB)", fmtCount(float64(s.conns))), fmtKiB)
		memRow.note("direct: Mosquitto's own growth; others: the hop process alone")
		memTotalRow = b.rep.add("RSS with the idle connections open (MiB)", fmtKiB)
		b.measureMemory(ctx, memRow, memTotalRow)
	}
	for i := range rateRows {
		b.measureThroughput(ctx, i, cells[i], rateRows[i], cpuRows[i])
	}
	for i, qos := range []byte{0, 1} {
		if rs, ok := latRows[qos]; ok {
			b.measureLatency(ctx, i, qos, rs)
		}
	}
	if connRow != nil {
		b.measureConnect(ctx, connRow, connCPURow)
	}
	if freshRow != nil {
		b.measureConnectFresh(ctx, connRow, freshRow, freshCPURow)
	}
	if reauthRow != nil {
		b.measureReauth(ctx, reauthRow)
	}

	for _, name := range failed {
		for _, r := range b.rep.rows {
			r.fail(name)
		}
	}
	if s.cpuProfile != "" && !b.rep.has(s.profTarget) {
		b.rep.note("-cpuprofile ignored: %s is not among the targets", s.profTarget)
	}
	log.Info("benchmark done", "took", time.Since(began).Round(time.Millisecond))
	return b.rep, errors.Join(b.errs...)
}

// broker is Mosquitto's process (startTargets starts it first).
func (b *bench) broker() *process { return b.targets[0].proc }

// fail records an error of the run.
func (b *bench) fail(err error) {
	b.log.Error("measurement failed", "err", err)
	b.errs = append(b.errs, err)
}

// startTargets starts Mosquitto (fatal if it fails) and every requested
// target in column order. It returns the names of the targets that failed
// to start: their columns show "error". HAProxy, when not installed, is
// dropped with a note instead.
func (b *bench) startTargets(ctx context.Context, dir string) ([]string, error) {
	mosq, err := startMosquitto(dir, slices.ContainsFunc(b.s.targets, func(t string) bool { return strings.HasSuffix(t, "-uds") }))
	if err != nil {
		return nil, err
	}
	b.targets = append(b.targets, mosq)
	b.rep.targets = append(b.rep.targets, targetDirect)
	b.log.Info("started", "target", targetDirect, "addr", mosq.addr, "pid", mosq.proc.pid())
	var failed []string
	for _, name := range b.s.targets {
		var t *target
		var err error
		switch name {
		case targetDirect:
			continue
		case targetRelay:
			t, err = startRelay(name, mosq.addr, false)
		case targetRelayUDS:
			t, err = startRelay(name, "unix:"+mosq.socket, false)
		case targetRelayEpollUDS:
			t, err = startRelay(name, "unix:"+mosq.socket, true)
		case targetHAProxy:
			t, err = startHAProxy(dir, mosq.addr, memoryConns(b.s.conns, 2, b.nofile)+64)
			if errors.Is(err, errNotInstalled) {
				b.log.Warn("haproxy not installed: column skipped")
				b.rep.note("HAProxy: not installed (no `haproxy` on PATH or in /usr/sbin), column skipped")
				continue
			}
		case targetProxy:
			t, err = b.startProxy(ctx, name, dir, mosq.addr)
		case targetProxyUDS:
			t, err = b.startProxy(ctx, name, dir, "unix:"+mosq.socket)
		}
		b.rep.targets = append(b.rep.targets, name)
		if err != nil {
			b.fail(fmt.Errorf("start %s: %w", name, err))
			b.rep.note("%s: failed to start: %s", name, firstLine(err.Error()))
			failed = append(failed, name)
			continue
		}
		b.log.Info("started", "target", name, "addr", t.addr, "pid", t.proc.pid())
		b.targets = append(b.targets, t)
	}
	return failed, nil
}

// startProxy builds the proxy binary unless -proxy-bin names one, then
// starts it.
func (b *bench) startProxy(ctx context.Context, name, dir, upstream string) (*target, error) {
	if b.s.proxyBin == "" {
		b.log.Info("building the proxy", "pkg", "./cmd/mqtt-authproxy")
		var err error
		if b.s.proxyBin, err = buildProxy(ctx, dir); err != nil {
			return nil, err
		}
	}
	return startProxy(name, b.s.proxyBin, dir, upstream, b.id)
}

// stopTargets stops the hops, then the broker.
func (b *bench) stopTargets() {
	for _, t := range slices.Backward(b.targets) {
		t.proc.Stop()
	}
}

// order returns the targets rotated by cell, so no target always runs first
// (drift and warm-up then affect each alike).
func (b *bench) order(cell int) []*target {
	n := len(b.targets)
	out := make([]*target, 0, n)
	for i := range n {
		out = append(out, b.targets[(cell+i)%n])
	}
	return out
}

// alive reports whether t's process still runs, recording an error if not.
func (b *bench) alive(t *target, what string) bool {
	if t.proc.exited() {
		b.fail(fmt.Errorf("%s on %s: process exited: %s", what, t.name, lastLines(t.proc.output(), 5)))
		return false
	}
	return true
}

// measureMemory fills the memory rows, one target after the other.
func (b *bench) measureMemory(ctx context.Context, perConn, total *row) {
	const what = "memory"
	var capped []string
	for _, t := range b.targets {
		if !b.alive(t, what) {
			perConn.fail(t.name)
			total.fail(t.name)
			continue
		}
		n := memoryConns(b.s.conns, t.fdsPerConn, b.nofile)
		if n < b.s.conns {
			capped = append(capped, fmt.Sprintf("%s %s", t.name, fmtCount(float64(n))))
		}
		res, err := runMemory(ctx, t, b.id, b.s, n)
		if err != nil {
			b.fail(fmt.Errorf("%s on %s: %w", what, t.name, err))
			perConn.fail(t.name)
			total.fail(t.name)
			continue
		}
		b.log.Info(what, "target", t.name, "conns", res.conns, "rss_before_kib", res.before, "rss_after_kib", res.after, "kib_per_conn", fmtKiB(res.perConn))
		perConn.set(t.name, res.perConn)
		total.set(t.name, float64(res.after)/1024)
		// Let the target tear the connections down before the next one.
		time.Sleep(b.s.settle)
	}
	if len(capped) > 0 {
		perConn.note("fewer connections where RLIMIT_NOFILE (%s, hard limit) would not hold them: %s", fmtCount(float64(b.nofile)), strings.Join(capped, ", "))
	}
}

// slice is the length of one round of a cell.
func (b *bench) slice() time.Duration { return b.s.duration / time.Duration(b.s.rounds) }

// rounds runs fn for every live target, s.rounds times, each round in the
// rotated order of its own index, so bursts of noise from the machine fall
// on every target alike. A target whose round fails is skipped for the rest
// of the cell; failed returns those targets.
func (b *bench) rounds(what string, cellIdx int, fn func(t *target, round int) error) (failed map[string]bool) {
	failed = map[string]bool{}
	for r := range b.s.rounds {
		for _, t := range b.order(cellIdx + r) {
			if failed[t.name] {
				continue
			}
			if !b.alive(t, what) {
				failed[t.name] = true
				continue
			}
			if err := fn(t, r); err != nil {
				b.fail(fmt.Errorf("%s on %s: %w", what, t.name, err))
				failed[t.name] = true
			}
		}
	}
	return failed
}

// measureThroughput fills one throughput cell's rate and hop CPU rows; QoS 1
// loss fails the run, QoS 0 loss is noted.
func (b *bench) measureThroughput(ctx context.Context, cellIdx int, c throughputCell, rate, cpu *row) {
	what := "throughput " + c.String()
	sums := map[string]throughputResult{}
	failed := b.rounds(what, cellIdx, func(t *target, round int) error {
		var waitProfile func()
		if c == (throughputCell{1, 64}) && b.profiling(t, profileQoS1, round) {
			waitProfile = b.startProfile(t)
		}
		res, err := runThroughput(ctx, t, b.id, b.s, c, fmt.Sprintf("tp%d-%d-%s", cellIdx, round, t.name), b.slice())
		if waitProfile != nil {
			waitProfile()
		}
		if err != nil {
			return err
		}
		b.log.Info(what, "target", t.name, "round", round, "sent", res.sent, "delivered", res.received,
			"msg_per_s", fmtCount(res.rate()), "hop_cpu_us_per_msg", fmtMicros(micros(res.cpuPerMsg())))
		sums[t.name] = sums[t.name].add(res)
		if lost := res.lost(); c.qos > 0 && lost > 0 {
			b.rep.lost[t.name] += lost
			return fmt.Errorf("%d of %d acknowledged messages lost", lost, res.sent)
		}
		return nil
	})
	var lost, drops []string
	for _, t := range b.targets {
		res, ok := sums[t.name]
		if failed[t.name] || !ok {
			rate.fail(t.name)
			cpu.fail(t.name)
			continue
		}
		rate.set(t.name, res.rate())
		if t.hop {
			cpu.set(t.name, micros(res.cpuPerMsg()))
		}
		if n := res.lost(); n > 0 && c.qos > 0 {
			lost = append(lost, fmt.Sprintf("%s %d", t.name, n))
		} else if n > 0 {
			drops = append(drops, fmt.Sprintf("%s %.2f %%", t.name, 100*float64(n)/float64(res.sent)))
		}
	}
	switch {
	case c.qos > 0 && len(lost) == 0:
		rate.note("lost (acked − delivered): 0")
	case c.qos > 0:
		rate.note("lost (acked − delivered): %s", strings.Join(lost, ", "))
	case len(drops) > 0:
		rate.note("not delivered (QoS 0): %s", strings.Join(drops, ", "))
	}
}

// measureLatency fills the p50/p90/p99 rows of one QoS, merging the samples
// of all rounds.
func (b *bench) measureLatency(ctx context.Context, cellIdx int, qos byte, rows [3]*row) {
	what := fmt.Sprintf("latency QoS %d", qos)
	sums := map[string]latencyResult{}
	failed := b.rounds(what, cellIdx, func(t *target, round int) error {
		res, err := runLatency(ctx, t, b.id, b.s, qos, fmt.Sprintf("lat%d-%d-%s", qos, round, t.name), b.slice())
		if err != nil {
			return err
		}
		p := res.percentiles()
		b.log.Info(what, "target", t.name, "round", round, "sent", res.sent, "p50", p[0], "p90", p[1], "p99", p[2])
		sums[t.name] = sums[t.name].add(res)
		if lost := res.lost(); qos > 0 && lost > 0 {
			b.rep.lost[t.name] += lost
			return fmt.Errorf("%d of %d acknowledged messages lost", lost, res.sent)
		}
		return nil
	})
	for _, t := range b.targets {
		res, ok := sums[t.name]
		if failed[t.name] || !ok {
			for _, r := range rows {
				r.fail(t.name)
			}
			continue
		}
		for i, d := range res.percentiles() {
			rows[i].set(t.name, micros(d))
		}
	}
}

// measureConnect fills the connection set-up row.
func (b *bench) measureConnect(ctx context.Context, r, cpu *row) {
	const what = "connect"
	sums := map[string]connectResult{}
	failed := b.rounds(what, 0, func(t *target, round int) error {
		var waitProfile func()
		if b.profiling(t, profileConnect, round) {
			waitProfile = b.startProfile(t)
		}
		res, err := runConnect(ctx, t, b.broker(), b.s, b.slice(), func(n int) (string, bool) { return t.token(b.id, n), true })
		if waitProfile != nil {
			waitProfile()
		}
		if err != nil {
			return err
		}
		b.log.Info(what, "target", t.name, "round", round, "connections", res.ok, "per_s", fmtCount(res.rate()),
			"hop_cpu_us_per_connect", fmtMicros(micros(res.cpuPerConnect())),
			"broker_cpu_us", fmtMicros(micros(res.perConnect(res.brokerCPU))),
			"client_cpu_us", fmtMicros(micros(res.perConnect(res.clientCPU))),
			"idle_us", fmtMicros(micros(res.perConnect(res.idle))))
		sums[t.name] = sums[t.name].add(res)
		return nil
	})
	for _, t := range b.targets {
		if res, ok := sums[t.name]; ok && !failed[t.name] {
			r.set(t.name, res.rate())
			if t.hop {
				cpu.set(t.name, micros(res.cpuPerConnect()))
			}
		} else {
			r.fail(t.name)
			cpu.fail(t.name)
		}
	}
}

// measureConnectFresh fills the rows of CONNECTs that each bring a token
// the proxy has not seen: the proxy only, for s.duration or until
// s.freshTokens are used. The direct anonymous rate of ref is copied in as
// the reference of the ratio.
func (b *bench) measureConnectFresh(ctx context.Context, ref, r, cpu *row) {
	const what = "connect, new tokens"
	if v, ok := ref.values[targetDirect]; ok && !ref.failed[targetDirect] {
		r.set(targetDirect, v)
	}
	for _, t := range b.targets {
		if !t.jwt || !b.alive(t, what) {
			continue
		}
		b.id.rewindFresh()
		res, err := runConnect(ctx, t, b.broker(), b.s, b.s.duration, func(int) (string, bool) { return b.id.freshToken(freshConnect) })
		if err != nil {
			b.fail(fmt.Errorf("%s on %s: %w", what, t.name, err))
			r.fail(t.name)
			cpu.fail(t.name)
			continue
		}
		b.log.Info(what, "target", t.name, "connections", res.ok, "per_s", fmtCount(res.rate()),
			"hop_cpu_us_per_connect", fmtMicros(micros(res.cpuPerConnect())))
		r.set(t.name, res.rate())
		cpu.set(t.name, micros(res.cpuPerConnect()))
	}
}

// measureReauth fills the re-authentication row (the proxy only: the others
// have no OAUTH2-JWT).
func (b *bench) measureReauth(ctx context.Context, r *row) {
	const what = "re-authentication"
	for _, t := range b.targets {
		if !t.jwt || !b.alive(t, what) {
			continue
		}
		b.id.rewindFresh()
		res, err := runReauth(ctx, t, b.id, b.s)
		if err != nil {
			b.fail(fmt.Errorf("%s on %s: %w", what, t.name, err))
			r.fail(t.name)
			continue
		}
		b.log.Info(what, "target", t.name, "round_trips", res.ok, "per_s", fmtCount(res.rate()))
		r.set(t.name, res.rate())
	}
}

// raiseNoFile raises RLIMIT_NOFILE as far as allowed (up to fs.nr_open or
// 1 Mi) and returns the new soft limit. Calling Setrlimit explicitly also
// makes os/exec pass the raised limit to the children (Mosquitto, the
// proxy, the relay, HAProxy) instead of restoring the original one.
func raiseNoFile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	want := uint64(1 << 20)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && n < want {
			want = n
		}
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: max(want, rl.Max)}); err != nil {
		// Unprivileged: the soft limit can still reach the hard one.
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: rl.Max, Max: rl.Max}); err != nil {
			return rl.Cur, fmt.Errorf("setrlimit: %w", err)
		}
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	return rl.Cur, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
