package provideradapter

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	calls      *prometheus.CounterVec
	callTime   *prometheus.HistogramVec
	circuit    *prometheus.GaugeVec
	deliveries *prometheus.CounterVec
	receipts   *prometheus.CounterVec
	refused    *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_provider_calls_total",
			Help: "Provider calls by provider, route and classification of the answer.",
		}, []string{"provider", "route", "classification"}),
		callTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_provider_call_duration_seconds",
			Help:    "Provider call latency by provider and route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"provider", "route"}),
		circuit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_provider_circuit_state",
			Help: "Circuit breaker state per provider and route: 0 closed, 1 half-open, 2 open.",
		}, []string{"provider", "route"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_otp_deliveries_total",
			Help: "Completed OTP deliveries by app, status (delivered, failed) and delivery mode.",
		}, []string{"app", "status", "deliveryMode"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_delivery_receipts_total",
			Help: "Delivery receipt webhooks by provider and outcome (recorded, unknown, forbidden, invalid).",
		}, []string{"provider", "outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_otp_dispatches_refused_total",
			Help: "Dispatches refused and dead-lettered without sending, by reason (seal_invalid, leg_not_in_plan, …).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.calls, m.callTime, m.circuit, m.deliveries, m.receipts, m.refused)
	return m
}
