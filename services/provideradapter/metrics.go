package provideradapter

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/heraldhq/herald/pkg/otp"
	"github.com/heraldhq/herald/pkg/sms"
)

type metrics struct {
	calls      *prometheus.CounterVec
	callTime   *prometheus.HistogramVec
	circuit    *prometheus.GaugeVec
	deliveries *prometheus.CounterVec
	receipts   *prometheus.CounterVec
	refused    *prometheus.CounterVec
}

// Circuit states, the values of herald_provider_circuit_state's state label.
const (
	circuitClosed   = "closed"
	circuitHalfOpen = "half_open"
	circuitOpen     = "open"
)

var circuitStates = []string{circuitClosed, circuitHalfOpen, circuitOpen}

// receiptOutcomes are the outcomes of a delivery receipt webhook; every
// provider with a webhook (served configured or not) can have each.
var (
	receiptOutcomes  = []string{"recorded", "unknown", "forbidden", "invalid"}
	receiptProviders = []string{sms.Fast2SMS, sms.Twilio}
)

// newMetrics creates the adapter's metrics; the counters an operator
// alerts on start at 0 for every label value known here (the refusal
// reasons, the webhooks' receipt outcomes), so that the first occurrence is
// an increase.
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		calls: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_provider_calls_total",
			Help: "Provider calls by provider, route and classification of the answer.",
		}, []string{"provider", "route", "classification"}),
		callTime: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_provider_call_duration_seconds",
			Help:    "Provider call latency by provider and route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"provider", "route"}),
		circuit: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_provider_circuit_state",
			Help: "Circuit breaker state per provider and route: 1 for the current state (closed, half_open, open), 0 for the others.",
		}, []string{"provider", "route", "state"}),
		deliveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_otp_deliveries_total",
			Help: "Completed OTP deliveries by app, status (delivered, failed) and delivery mode.",
		}, []string{"app", "status", "delivery_mode"}),
		receipts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_delivery_receipts_total",
			Help: "Delivery receipt webhooks by provider and outcome (recorded, unknown, forbidden, invalid).",
		}, []string{"provider", "outcome"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_otp_dispatches_refused_total",
			Help: "Dispatches refused and dead-lettered without sending, by reason (seal_invalid, leg_not_in_plan, …).",
		}, []string{"reason"}),
	}
	for _, r := range []string{refusedNoRequest, refusedWrongOwner, refusedSeal, refusedUnknownApp, refusedNotInPlan, refusedNoProvider} {
		m.refused.WithLabelValues(r)
	}
	for _, p := range receiptProviders {
		for _, o := range receiptOutcomes {
			m.receipts.WithLabelValues(p, o)
		}
	}
	return m
}

// initApp creates at 0 the counters of what an app's sends can do: a
// delivery delivered or failed on each leg of its plan, each classification
// of a call to the leg's provider and route.
func (m *metrics) initApp(app string, plan []otp.Leg) {
	for _, leg := range plan {
		for _, st := range []string{"delivered", "failed"} {
			m.deliveries.WithLabelValues(app, st, leg.Route)
		}
		for _, c := range sms.Classifications() {
			m.calls.WithLabelValues(leg.Provider, leg.Route, string(c))
		}
	}
}

// setCircuit exports a breaker's state: one series per state, 1 for the
// current one (the Prometheus convention for an enum).
func (m *metrics) setCircuit(provider, route, state string) {
	for _, s := range circuitStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.circuit.WithLabelValues(provider, route, s).Set(v)
	}
}
