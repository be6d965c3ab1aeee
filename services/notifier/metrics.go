package notifier

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	calls    *prometheus.CounterVec
	failures *prometheus.CounterVec
	delivery *prometheus.HistogramVec
	ledger   prometheus.Histogram
	leader   prometheus.Gauge
}

// callOutcomes are the values of herald_notifier_calls_total's outcome label.
var callOutcomes = []string{"ok", "rate_limited", "credentials", "transient", "permanent"}

// newMetrics creates the notifier's metrics. The counters start at 0 for
// every label value known here, so that the first of each is an increase:
// calls for every sink mode and the steps it can take (a routing change or
// a subscription can send to any mode at any time), failures for every mode
// with the code of a failure that is not Slack's ("unknown"; Slack's own
// codes are open-ended and appear when first given).
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		calls: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_notifier_calls_total",
			Help: "Calls to Slack and other sinks by mode, step (root, update, reply) and outcome (ok, rate_limited, credentials, transient, permanent).",
		}, []string{"mode", "step", "outcome"}),
		failures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_notifier_failures_total",
			Help: "Steps given up for good (notification_failed events) by mode and error code.",
		}, []string{"mode", "error"}),
		delivery: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_notifier_delivery_duration_seconds",
			Help:    "From the incident transition reaching the notifier to the sink accepting the step, by step.",
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"step"}),
		ledger: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_notifier_ledger_write_duration_seconds",
			Help:    "From the sink's answer to the ledger entry's acknowledgement: the only window in which a crash can cause a duplicate.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1},
		}),
		leader: f.NewGauge(prometheus.GaugeOpts{
			Name: "herald_notifier_active",
			Help: "1 while this process is the active notifier (holds the lease), 0 while it stands by.",
		}),
	}
	for _, mode := range []string{ModeWebAPI, ModeIncomingWebhook, ModeWebhook, ModeConsole} {
		steps := []string{StepRoot, StepReply}
		if capsOf(mode).Edit {
			steps = append(steps, StepUpdate)
		}
		for _, st := range steps {
			for _, o := range callOutcomes {
				m.calls.WithLabelValues(mode, st, o)
			}
		}
		m.failures.WithLabelValues(mode, "unknown")
	}
	for _, st := range []string{StepRoot, StepUpdate, StepReply} {
		m.delivery.WithLabelValues(st)
	}
	return m
}
