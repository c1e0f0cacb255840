package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// row is one line of the result table: a measurement and its value for
// each target.
type row struct {
	label  string
	format func(float64) string
	values map[string]float64 // by target name; absent = not measured
	failed map[string]bool    // by target name: the measurement failed
	delta  bool               // the notes give proxy − direct (latency rows)
	notes  []string
}

// set records target's value.
func (r *row) set(target string, v float64) { r.values[target] = v }

// fail marks target's measurement as failed.
func (r *row) fail(target string) { r.failed[target] = true }

// note adds a free-text remark to the row.
func (r *row) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// report is the whole output: the table, remarks under it and the machine.
type report struct {
	targets []string // columns, in order
	rows    []*row
	notes   []string
	machine string
	params  string
	lost    map[string]int64 // QoS 1 messages acknowledged but not delivered, by target
}

func newReport(targets []string) *report {
	return &report{targets: targets, lost: map[string]int64{}}
}

// add appends a row (rows print in the order they were added).
func (rep *report) add(label string, format func(float64) string) *row {
	r := &row{label: label, format: format, values: map[string]float64{}, failed: map[string]bool{}}
	rep.rows = append(rep.rows, r)
	return r
}

// note adds a remark printed under the table.
func (rep *report) note(format string, args ...any) {
	rep.notes = append(rep.notes, fmt.Sprintf(format, args...))
}

// has reports whether target is a column.
func (rep *report) has(target string) bool {
	for _, t := range rep.targets {
		if t == target {
			return true
		}
	}
	return false
}

// ratioPairs are the ratio columns, each proxy over what it is judged
// against: the broker itself and the byte relay reaching it the same way.
var ratioPairs = [][2]string{
	{targetProxy, targetDirect}, {targetProxy, targetRelay},
	{targetProxyUDS, targetDirect}, {targetProxyUDS, targetRelayUDS},
}

// write prints the report as markdown.
func (rep *report) write(w io.Writer) {
	var pairs [][2]string
	for _, p := range ratioPairs {
		if rep.has(p[0]) && rep.has(p[1]) {
			pairs = append(pairs, p)
		}
	}
	head := append([]string{"Measurement"}, rep.targets...)
	for _, p := range pairs {
		head = append(head, p[0]+" ÷ "+p[1])
	}
	head = append(head, "Notes")
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	aligns := []string{"---"}
	for range len(head) - 2 {
		aligns = append(aligns, "---:")
	}
	fmt.Fprintf(w, "|%s|---|\n", strings.Join(aligns, "|"))
	for _, r := range rep.rows {
		cells := []string{r.label}
		for _, t := range rep.targets {
			cells = append(cells, r.cell(t))
		}
		var deltas []string
		for _, p := range pairs {
			cells = append(cells, r.ratio(p[0], p[1]))
			if r.delta && p[1] == targetDirect {
				if d, ok := r.diff(p[0], p[1]); ok {
					deltas = append(deltas, p[0]+" − direct: "+d)
				}
			}
		}
		cells = append(cells, strings.Join(append(deltas, r.notes...), "; "))
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
	for _, n := range rep.notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	if rep.params != "" {
		fmt.Fprintf(w, "- Parameters: %s\n", rep.params)
	}
	fmt.Fprintf(w, "- Machine: %s\n", rep.machine)
}

func (r *row) cell(target string) string {
	if r.failed[target] {
		return "error"
	}
	v, ok := r.values[target]
	if !ok {
		return "–"
	}
	return r.format(v)
}

func (r *row) ratio(a, b string) string {
	va, oka := r.values[a]
	vb, okb := r.values[b]
	if !oka || !okb || r.failed[a] || r.failed[b] || vb == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", va/vb)
}

func (r *row) diff(a, b string) (string, bool) {
	va, oka := r.values[a]
	vb, okb := r.values[b]
	if !oka || !okb || r.failed[a] || r.failed[b] {
		return "", false
	}
	d := va - vb
	sign := "+"
	if d < 0 {
		sign = "−"
	}
	return sign + r.format(math.Abs(d)) + " µs", true
}

// fmtCount formats a rate or count with thousands separators.
func fmtCount(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtMicros formats microseconds: one decimal below 100.
func fmtMicros(v float64) string {
	if math.Abs(v) < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmtCount(v)
}

// fmtKiB formats kibibytes with one decimal.
func fmtKiB(v float64) string { return fmt.Sprintf("%.1f", v) }

// micros converts a duration to float microseconds.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// machineInfo describes where the run happened: CPU model, cores, kernel,
// Go, the broker's and HAProxy's versions, load average, date.
func machineInfo() string {
	parts := []string{cpuModel(), fmt.Sprintf("%d cores", runtime.NumCPU())}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		parts = append(parts, "Linux "+strings.TrimSpace(string(b)))
	}
	parts = append(parts, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	if v := programVersion("mosquitto", "-h"); v != "" {
		parts = append(parts, v)
	}
	if v := programVersion("haproxy", "-v"); v != "" {
		parts = append(parts, v)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			// Other work on the machine shows up as noise in every figure.
			parts = append(parts, "load average "+f[0]+" at start")
		}
	}
	parts = append(parts, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	return strings.Join(parts, ", ")
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// programVersion runs name with flag and returns the first line of its
// output trimmed to "name version x.y.z" shape ("" if absent).
func programVersion(name, flag string) string {
	bin, err := lookBinary(name)
	if err != nil {
		return ""
	}
	out, _ := exec.Command(bin, flag).CombinedOutput() // mosquitto -h exits non-zero
	line, _, _ := strings.Cut(string(out), "\n")
	f := strings.Fields(line)
	if len(f) >= 3 && strings.EqualFold(f[1], "version") {
		return f[0] + " " + f[2]
	}
	return strings.TrimSpace(line)
}
