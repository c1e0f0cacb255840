package policy

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Store's Prometheus collectors (STYLE 36-39). The reload
// pair follows Prometheus' own config reload metrics.
type metrics struct {
	collectors      []prometheus.Collector
	reloadSuccess   prometheus.Counter
	reloadFailure   prometheus.Counter
	lastSuccessful  prometheus.Gauge
	lastSuccessTime prometheus.Gauge
	topicSpaces     prometheus.Gauge
	roleAssignments prometheus.Gauge
	denyAssignments prometheus.Gauge
	warnings        prometheus.Gauge
	watchErrors     prometheus.Counter
}

// newMetrics builds the collectors and registers them with reg when it is
// not nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mqtt_authproxy_policy_reloads_total",
		Help: "Policy reloads (file change or SIGHUP) by result; a failed reload keeps the previous policy.",
	}, []string{"result"})
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m := &metrics{
		reloadSuccess:   reloads.WithLabelValues("success"),
		reloadFailure:   reloads.WithLabelValues("failure"),
		lastSuccessful:  gauge("mqtt_authproxy_policy_last_reload_successful", "Whether the last policy load or reload succeeded (1) or failed (0)."),
		lastSuccessTime: gauge("mqtt_authproxy_policy_last_reload_success_timestamp_seconds", "Time of the last successful policy load or reload."),
		topicSpaces:     gauge("mqtt_authproxy_policy_topic_spaces", "Topic spaces in the current policy."),
		roleAssignments: gauge("mqtt_authproxy_policy_role_assignments", "Role assignments in the current policy."),
		denyAssignments: gauge("mqtt_authproxy_policy_deny_assignments", "Deny assignments in the current policy."),
		warnings:        gauge("mqtt_authproxy_policy_warnings", "Warnings of the current policy (logged at load), e.g. a policy that grants nothing."),
		watchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqtt_authproxy_policy_watch_errors_total",
			Help: "Errors reported by the policy file watcher.",
		}),
	}
	m.collectors = []prometheus.Collector{
		reloads, m.lastSuccessful, m.lastSuccessTime, m.topicSpaces,
		m.roleAssignments, m.denyAssignments, m.warnings, m.watchErrors,
	}
	if reg != nil {
		var errs []error
		for _, c := range m.collectors {
			if err := reg.Register(c); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// loaded records a successful load or reload of snap at t.
func (m *metrics) loaded(snap *Snapshot, t time.Time) {
	m.lastSuccessful.Set(1)
	m.lastSuccessTime.Set(float64(t.UnixNano()) / 1e9)
	m.topicSpaces.Set(float64(len(snap.spaces)))
	m.roleAssignments.Set(float64(len(snap.assignments)))
	m.denyAssignments.Set(float64(len(snap.denies)))
	m.warnings.Set(float64(len(snap.warnings)))
}

// failed records a failed reload.
func (m *metrics) failed() {
	m.reloadFailure.Inc()
	m.lastSuccessful.Set(0)
}
