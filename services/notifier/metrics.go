package notifier

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	calls    *prometheus.CounterVec
	failures *prometheus.CounterVec
	delivery *prometheus.HistogramVec
	ledger   prometheus.Histogram
	leader   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_notifier_calls_total",
			Help: "Calls to Slack and other sinks by mode, step (root, update, reply) and outcome (ok, rate_limited, transient, permanent).",
		}, []string{"mode", "step", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_notifier_failures_total",
			Help: "Steps given up for good (notification_failed events) by mode and error code.",
		}, []string{"mode", "error"}),
		delivery: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_notifier_delivery_seconds",
			Help:    "From the incident transition reaching the notifier to the sink accepting the step, by step.",
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"step"}),
		ledger: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herald_notifier_ledger_write_seconds",
			Help:    "From the sink's answer to the ledger entry's acknowledgement: the only window in which a crash can cause a duplicate.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1},
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_notifier_active",
			Help: "1 while this process is the active notifier (holds the lease), 0 while it stands by.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.failures, m.delivery, m.ledger, m.leader)
	}
	return m
}
