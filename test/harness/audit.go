package harness

import (
	"encoding/json"
	"strings"
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
