package token

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the verifier's Prometheus collectors (STYLE 36-38). Label
// values come from closed sets; children on the hot path are cached.
type metrics struct {
	collectors   []prometheus.Collector
	verification map[string]prometheus.Counter // by Label value, incl. ok and other
	fetchSuccess prometheus.Counter
	fetchFailure prometheus.Counter
	overage      prometheus.Counter
	verifiedHits prometheus.Counter
}

// newMetrics builds the collectors and registers them with reg when it is
// not nil. lastSuccess returns the timestamp exported as
// mqtt_authproxy_token_keys_last_success_timestamp_seconds.
//
// That gauge has no issuer label (issuer URLs are unbounded label values,
// STYLE 38); it is the oldest last-success time over all configured issuers
// (0 while one has never been fetched), so "time() - gauge > x" alerts when
// any issuer's keys are getting stale.
func newMetrics(reg prometheus.Registerer, lastSuccess func() float64) (*metrics, error) {
	verifications := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mqtt_authproxy_token_verifications_total",
		Help: "Token verifications by result: ok or the reason of the refusal.",
	}, []string{"result"})
	fetches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mqtt_authproxy_token_key_fetches_total",
		Help: "Fetches of issuer key sets (JWKS, discovery or file) by result.",
	}, []string{"result"})
	m := &metrics{
		verification: make(map[string]prometheus.Counter, len(sentinels)+2),
		fetchSuccess: fetches.WithLabelValues("success"),
		fetchFailure: fetches.WithLabelValues("failure"),
		overage: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqtt_authproxy_token_groups_overage_total",
			Help: "Accepted tokens with a groups overage; group-based assignments do not apply to them.",
		}),
	}
	m.verifiedHits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mqtt_authproxy_token_verified_cache_hits_total",
		Help: "Accepted tokens that were the very bytes of a token verified before with the same key set, and were not verified again.",
	})
	for _, l := range []string{labelOK, labelOther} {
		m.verification[l] = verifications.WithLabelValues(l)
	}
	for _, s := range sentinels {
		m.verification[s.label] = verifications.WithLabelValues(s.label)
	}
	m.collectors = []prometheus.Collector{
		verifications, fetches, m.overage, m.verifiedHits,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mqtt_authproxy_token_keys_last_success_timestamp_seconds",
			Help: "Oldest time of the last successful key set fetch over all configured issuers (0 while one has none).",
		}, lastSuccess),
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			// Leave the registry as it was, so a caller may retry.
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("register token metrics: %w", err)
		}
	}
	return m, nil
}

// observe counts one verification result.
func (m *metrics) observe(err error) {
	m.verification[Label(err)].Inc()
}
