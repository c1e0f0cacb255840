package proxy

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqtt-authproxy/mqtt-authproxy/authz"
	"github.com/mqtt-authproxy/mqtt-authproxy/packetcodec"
)

// metrics are the proxy's Prometheus instruments (SPEC 6): no per-client or
// per-topic labels; every label value comes from a closed set.
type metrics struct {
	active             prometheus.Gauge
	connects           *prometheus.CounterVec
	disconnects        *prometheus.CounterVec
	denials            *prometheus.CounterVec
	reauths            *prometheus.CounterVec
	acceptErrors       prometheus.Counter
	upstreamDialErrors prometheus.Counter
	// subscriptionsOverQuota counts filters refused with SUBACK 0x97 for
	// the connection's subscription budget (maxSubscriptionBytes).
	subscriptionsOverQuota prometheus.Counter
	packetsVec             *prometheus.CounterVec
	// packets caches the children of packetsVec by direction and packet
	// type, so the hot path does no label lookup (STYLE 38).
	packets [2][16]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mqtt_authproxy_connections_active",
			Help: "Client connections currently open.",
		}),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqtt_authproxy_connects_total",
			Help: "CONNECT attempts by result.",
		}, []string{"result"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqtt_authproxy_disconnects_total",
			Help: "Ended relayed connections by cause.",
		}, []string{"cause"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqtt_authproxy_denials_total",
			Help: "Operations denied by policy, by action.",
		}, []string{"action"}),
		reauths: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqtt_authproxy_reauthentications_total",
			Help: "In-session re-authentications (AUTH 0x19) by result.",
		}, []string{"result"}),
		acceptErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqtt_authproxy_accept_errors_total",
			Help: "Temporary errors accepting client connections.",
		}),
		upstreamDialErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqtt_authproxy_upstream_dial_errors_total",
			Help: "Failed dials to the upstream broker.",
		}),
		subscriptionsOverQuota: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqtt_authproxy_subscriptions_over_quota_total",
			Help: "Subscription filters refused (SUBACK 0x97) because the connection's live filters would pass 1 MiB.",
		}),
		packetsVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqtt_authproxy_packets_total",
			Help: "MQTT packets read, by direction and packet type.",
		}, []string{"direction", "type"}),
	}
	for _, r := range []string{resultSuccess, resultNoConnect, resultProtocolError, resultTooLarge, resultUnsupportedV3, resultBadMethod,
		resultNotAuthorized, resultServerUnavailable, resultServerBusy, resultInvalidClientID, resultWillDenied, resultUpstreamRefused, resultStopped} {
		m.connects.WithLabelValues(r)
	}
	for _, a := range []authz.Action{authz.Publish, authz.Subscribe, authz.Receive} {
		m.denials.WithLabelValues(a.String())
	}
	for _, r := range []string{reauthSuccess, reauthOtherPrincipal, reauthInvalid, reauthBadMethod, reauthUnavailable} {
		m.reauths.WithLabelValues(r)
	}
	for d, dir := range []string{"from_client", "from_upstream"} {
		for t := range 16 {
			m.packets[d][t] = m.packetsVec.WithLabelValues(dir, packetcodec.TypeName(byte(t)))
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.active, m.connects, m.disconnects, m.denials, m.reauths,
			m.acceptErrors, m.upstreamDialErrors, m.subscriptionsOverQuota, m.packetsVec} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register proxy metrics: %w", err)
			}
		}
	}
	return m, nil
}

// packet counts one packet read in direction dir.
func (m *metrics) packet(dir int, typ byte) {
	m.packets[dir][typ&0x0f].Inc()
}
