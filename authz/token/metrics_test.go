package token_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz/token"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// STYLE 37-39: names lint clean; counters are pre-initialised and count
// results by Label; the exposition matches testdata/metrics.prom.
func TestMetrics(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	must := func(tok string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	_ = f.verify(must(f.idp.MintEntra(tenant, principalA, 2, nil, time.Hour)))
	_ = f.verify(must(f.idp.MintEntra(tenant, principalA, 2, map[string]any{"_claim_names": map[string]any{"groups": "s"}}, time.Hour)))
	_ = f.verify(must(f.idp.MintEntra(tenant, principalA, 2, nil, -time.Hour)))
	_ = f.verify("not-a-token")

	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}

	golden := filepath.Join("testdata", "metrics.prom")
	names := []string{
		"mqtt_authproxy_token_verifications_total",
		"mqtt_authproxy_token_key_fetches_total",
		"mqtt_authproxy_token_groups_overage_total",
	}
	// testutil.GatherAndCompare needs a module outside go.sum; the text
	// exposition of the selected families is compared instead.
	var buf bytes.Buffer
	for _, mf := range mfs {
		if slices.Contains(names, mf.GetName()) {
			if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != string(want) {
		t.Errorf("exposition differs from %s (go test -update):\ngot:\n%s\nwant:\n%s", golden, got, want)
	}

	ts := gaugeValue(t, f.reg, "mqtt_authproxy_token_keys_last_success_timestamp_seconds")
	if want := float64(f.clock.Now().Unix()); ts != want {
		t.Errorf("got keys last success %v, want %v", ts, want)
	}
}

// The freshness gauge is 0 until every issuer has keys (STYLE 37).
func TestKeysLastSuccessBeforeFetch(t *testing.T) {
	f := newFixture(t, fixtureOptions{noRun: true})
	if got := gaugeValue(t, f.reg, "mqtt_authproxy_token_keys_last_success_timestamp_seconds"); got != 0 {
		t.Errorf("got %v, want 0", got)
	}
	if got := counterValue(t, f.reg, "mqtt_authproxy_token_verifications_total", map[string]string{"result": "keys_unavailable"}); got != 0 {
		t.Errorf("got %v, want a pre-initialised 0", got)
	}
}

// A second verifier on the same registry is refused, not a panic.
func TestMetricsDoubleRegistration(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	cfg := token.DefaultConfig()
	cfg.Entra.Tenants = []string{tenant}
	if _, err := token.NewVerifier(cfg, token.Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := token.NewVerifier(cfg, token.Options{Registerer: reg}); err == nil {
		t.Errorf("second registration: got nil, want an error")
	}
}

func metricFamily(t *testing.T, reg prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	t.Fatalf("metric %s not gathered", name)
	return nil
}

func counterValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	for _, m := range metricFamily(t, reg, name).GetMetric() {
		match := true
		for _, lp := range m.GetLabel() {
			if labels[lp.GetName()] != lp.GetValue() {
				match = false
			}
		}
		if match && len(m.GetLabel()) == len(labels) {
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

func gaugeValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	return metricFamily(t, reg, name).GetMetric()[0].GetGauge().GetValue()
}
