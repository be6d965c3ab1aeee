package bus

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/pkg/event"
)

// Metrics are the bus's Prometheus metrics. Type labels are limited to the
// catalog's types (anything else is "unknown") so that junk published on the
// bus cannot blow up label cardinality.
type Metrics struct {
	Published     *prometheus.CounterVec
	PublishErrors *prometheus.CounterVec
	Consumed      *prometheus.CounterVec
	DeadLettered  *prometheus.CounterVec
	HandlerTime   *prometheus.HistogramVec
}

// NewMetrics creates the metrics and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_events_published_total",
			Help: "Events published and acknowledged by JetStream, by type.",
		}, []string{"type"}),
		PublishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_events_publish_errors_total",
			Help: "Events refused before or by JetStream, by type and reason (invalid, unavailable).",
		}, []string{"type", "reason"}),
		Consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_events_consumed_total",
			Help: "Events delivered to a consumer, by consumer, type and outcome (acked, retried, dead_lettered).",
		}, []string{"consumer", "type", "outcome"}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_events_dead_lettered_total",
			Help: "Messages sent to the DLQ stream, by consumer, type and reason (envelope, unknown_type, schema, malformed, handler, exhausted).",
		}, []string{"consumer", "type", "reason"}),
		HandlerTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_handler_duration_seconds",
			Help:    "Time a consumer's handler took per event, by consumer and type.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"consumer", "type"}),
	}
	if reg != nil {
		reg.MustRegister(m.Published, m.PublishErrors, m.Consumed, m.DeadLettered, m.HandlerTime)
	}
	return m
}

// typeLabel bounds label values to the catalog.
func typeLabel(cat *event.Catalog, t event.Type) string {
	if _, err := cat.Def(t); err != nil {
		return "unknown"
	}
	return string(t)
}
