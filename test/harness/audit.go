package harness

import (
	"encoding/json"
	"strings"
	"time"
)

// AuditLines returns the audit lines (JSON with "log":"audit") among the
// lines of logs, decoded, in order; other lines are skipped.
func AuditLines(logs string) []map[string]any {
	var lines []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["log"] == "audit" {
			lines = append(lines, m)
		}
	}
	return lines
}

// CountAudit counts the audit lines in logs whose fields have the values
// in want.
func CountAudit(logs string, want map[string]string) int {
	n := 0
	for _, m := range AuditLines(logs) {
		match := true
		for k, v := range want {
			if m[k] != v {
				match = false
				break
			}
		}
		if match {
			n++
		}
	}
	return n
}

// WaitCountAudit is CountAudit on logs, polled until at least n lines match
// or timeout passes: a line the proxy writes after its answer to the client
// (a refused CONNECT's, say) may not be there yet when the client has read
// that answer.
func WaitCountAudit(logs interface{ String() string }, want map[string]string, n int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		got := CountAudit(logs.String(), want)
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}
