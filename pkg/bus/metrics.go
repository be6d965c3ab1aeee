package bus

import (
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

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
	f := promauto.With(reg)
	return &Metrics{
		Published: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_events_published_total",
			Help: "Events published and acknowledged by JetStream, by type.",
		}, []string{"type"}),
		PublishErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_events_publish_errors_total",
			Help: "Events refused before or by JetStream, by type and reason (invalid, unavailable).",
		}, []string{"type", "reason"}),
		Consumed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_events_consumed_total",
			Help: "Events delivered to a consumer, by consumer, type and outcome (acked, retried, dead_lettered).",
		}, []string{"consumer", "type", "outcome"}),
		DeadLettered: f.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_events_dead_lettered_total",
			Help: "Messages sent to the DLQ stream, by consumer, type and reason (envelope, unknown_type, subject, schema, malformed, handler, exhausted).",
		}, []string{"consumer", "type", "reason"}),
		HandlerTime: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herald_handler_duration_seconds",
			Help:    "Time a consumer's handler took per event, by consumer and type.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"consumer", "type"}),
	}
}

// unknownType is the type label of a message whose type is not one the
// reader can receive.
const unknownType = "unknown"

// InitChecked creates at 0 the dead-letter counters of a reader that checks
// the messages it receives (Decode, Check) and dead-letters those that fail,
// for the types it can receive (Receivable) and the reasons a check gives,
// so that an alert on their increase sees the first dead letter (a counter
// born at 1 has no increase). Consume adds the handler's reasons.
func (m *Metrics) InitChecked(consumer string, types []event.Type) {
	m.initDeadLettered(consumer, types, ReasonSubject, ReasonMalformed, ReasonSchema)
	// A message that is not one of those types: no envelope, a type outside
	// the catalog, or a subject of another type.
	m.initDeadLettered(consumer, []event.Type{unknownType}, ReasonEnvelope, ReasonUnknownType, ReasonSubject)
}

func (m *Metrics) initDeadLettered(consumer string, types []event.Type, reasons ...string) {
	for _, t := range types {
		for _, r := range reasons {
			m.DeadLettered.WithLabelValues(consumer, string(t), r)
		}
	}
}

// Receivable lists the catalog's types a reader of stream with these
// subject filters (none: the whole stream) can be delivered: the types
// whose subjects ("<log>.<type>", "<log>.<type>.…") a filter matches.
// Metrics are pre-created for these only, so that series exist for what can
// happen and not for every type of the catalog.
func (b *Bus) Receivable(stream string, filters ...string) []event.Type {
	if len(filters) == 0 {
		// Streams are named for the log whose subjects they hold (EVENTS: events.>).
		filters = []string{strings.ToLower(stream) + ".>"}
	}
	var out []event.Type
	for _, d := range b.Catalog.Defs() {
		subj := string(d.Log) + "." + string(d.Type)
		for _, f := range filters {
			if server.SubjectsCollide(f, subj) || server.SubjectsCollide(f, subj+".>") {
				out = append(out, d.Type)
				break
			}
		}
	}
	return out
}

// typeLabel bounds label values to the catalog.
func typeLabel(cat *event.Catalog, t event.Type) string {
	if _, err := cat.Def(t); err != nil {
		return unknownType
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
	c[unknownType] = vec.WithLabelValues(append([]string{unknownType}, extra...)...)
	return c
}

func (c typeCounters) inc(h nats.Header) {
	t := event.HeaderValue(h, event.HeaderType)
	if ctr, ok := c[t]; ok {
		ctr.Inc()
		return
	}
	c[unknownType].Inc()
}
