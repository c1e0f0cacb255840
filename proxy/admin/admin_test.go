package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHandler(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "mqtt_authproxy_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	ready := errors.New("keys not loaded")
	h := Handler(reg, []Check{{Name: "keys", Ready: func(context.Context) error { return ready }}})
	tests := []struct {
		name     string
		path     string
		wantCode int
		wantBody string
	}{
		{"healthz", "/healthz", 200, "ok"},
		{"metrics", "/metrics", 200, "mqtt_authproxy_test_total 1"},
		{"readyz not ready names the check", "/readyz", 503, "keys: keys not loaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
	ready = nil
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != 200 {
		t.Errorf("GET /readyz after checks pass = %d, want 200", rec.Code)
	}
}
