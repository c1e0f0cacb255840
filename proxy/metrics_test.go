package proxy

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// STYLE 37-39: names follow Prometheus conventions, every label value comes
// from a closed set and known combinations are exported at 0 from the start.
func TestMetricsLintAndPreinitialised(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if _, err := newMetrics(reg); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
	want := `
# HELP mqtt_authproxy_denials_total Operations denied by policy, by action.
# TYPE mqtt_authproxy_denials_total counter
mqtt_authproxy_denials_total{action="publish"} 0
mqtt_authproxy_denials_total{action="receive"} 0
mqtt_authproxy_denials_total{action="subscribe"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mqtt_authproxy_denials_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "mqtt_authproxy_connects_total"); err != nil || n != 13 {
		t.Errorf("connects_total series = %d (err %v), want all 13 results pre-initialised", n, err)
	}
}

// Registering twice into one registry is an error, not a panic: serve
// registers once per process (STYLE 36).
func TestMetricsDoubleRegistration(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if _, err := newMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := newMetrics(reg); err == nil {
		t.Error("second registration succeeded, want an error")
	}
}
