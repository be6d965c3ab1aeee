package bus

import (
	"github.com/nats-io/nats.go"
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

// typeCounters are one counter per catalog type (and "unknown"), resolved
// once so that counting a message costs a map lookup, not a label hash.
type typeCounters map[string]prometheus.Counter

func (m *Metrics) byType(cat *event.Catalog, vec *prometheus.CounterVec, extra ...string) typeCounters {
	c := typeCounters{}
	for _, d := range cat.Defs() {
		c[string(d.Type)] = vec.WithLabelValues(append([]string{string(d.Type)}, extra...)...)
	}
	c["unknown"] = vec.WithLabelValues(append([]string{"unknown"}, extra...)...)
	return c
}

func (c typeCounters) inc(h nats.Header) {
	var t string
	if v := h[event.HeaderType]; len(v) > 0 {
		t = v[0]
	}
	if ctr, ok := c[t]; ok {
		ctr.Inc()
		return
	}
	c["unknown"].Inc()
}
