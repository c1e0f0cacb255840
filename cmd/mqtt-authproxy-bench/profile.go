package main

import (
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Cells -cpuprofile can record.
const (
	profileQoS1    = "qos1-64"
	profileConnect = "connect"
)

// profiling reports whether this round of cell on t is the one to record.
func (b *bench) profiling(t *target, cell string, round int) bool {
	return b.s.cpuProfile != "" && t.name == b.s.profTarget && b.s.profileOf == cell && round == 0
}

// startProfile records the CPU profile of t's process with `perf record`
// for one round of a cell (the proxy binary has no profiling flag of its own) and
// returns a function that waits for the recording to end. The profile is
// optional: without perf, or if perf fails (e.g. perf_event_paranoid), the
// report gets a note and the run goes on.
func (b *bench) startProfile(t *target) func() {
	perf, err := lookBinary("perf")
	if err != nil {
		b.rep.note("-cpuprofile skipped: the proxy binary has no profiling flag and `perf` is not installed")
		return nil
	}
	secs := strconv.FormatFloat(b.slice().Seconds(), 'f', 3, 64)
	cmd := exec.Command(perf, "record", "-g", "-F", "999", "-p", strconv.Itoa(t.proc.pid()), "-o", b.s.cpuProfile, "--", "sleep", secs)
	p, err := startProcess("perf", cmd)
	if err != nil {
		b.log.Warn("-cpuprofile: perf did not start", "err", err)
		b.rep.note("-cpuprofile: perf did not start: %v", err)
		return nil
	}
	return func() {
		select {
		case <-p.done:
		case <-time.After(b.slice() + 30*time.Second):
			p.Stop()
		}
		if p.cmd.ProcessState != nil && p.cmd.ProcessState.Success() {
			b.rep.note("CPU profile of the proxy during its first %s round: %s (perf record -g; view with `perf report -i %s`)", b.s.profileOf, b.s.cpuProfile, b.s.cpuProfile)
			return
		}
		out := lastLines(p.output(), 3)
		b.log.Warn("-cpuprofile: perf record failed", "output", out)
		b.rep.note("-cpuprofile: perf record failed: %s", strings.ReplaceAll(out, "\n", " "))
	}
}
