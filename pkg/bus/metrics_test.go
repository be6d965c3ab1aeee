package bus_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/streams"
)

func TestReceivableIsWhatTheFilterLetsThrough(t *testing.T) {
	b := heraldtest.JetStream(t)
	var events, incidents []event.Type
	for _, d := range b.Catalog.Defs() {
		switch d.Log {
		case event.LogEvents:
			events = append(events, d.Type)
		case event.LogIncidents:
			incidents = append(incidents, d.Type)
		}
	}
	tests := []struct {
		name    string
		stream  string
		filters []string
		want    []event.Type
	}{
		{"no filter: the whole stream", streams.Events, nil, events},
		{"one type", streams.Events, []string{"events.otp_verified"}, []event.Type{"otp_verified"}},
		{"two types", streams.Events, []string{"events.otp_verified", "events.otp_revoked"},
			[]event.Type{"otp_revoked", "otp_verified"}},
		{"a log's wildcard", streams.Incidents, []string{"incidents.>"}, incidents},
		{"one incident type by its subjects", streams.Incidents, []string{"incidents.incident_opened.>"}, []event.Type{"incident_opened"}},
		{"a subject of no type", streams.Events, []string{"events.nothing"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := b.Receivable(tt.stream, tt.filters...)
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("Receivable(%s, %v) = %v, want %v", tt.stream, tt.filters, got, want)
			}
		})
	}
}

// A consumer's series exist from its start, and only for the types it can
// receive: the handler histogram per receivable type, the dead-letter
// counters at 0 for every reason its checks can give.
func TestAConsumersSeriesAreThoseOfWhatItCanReceive(t *testing.T) {
	b := heraldtest.JetStream(t)
	sub, err := b.Consume(ctx(t), bus.ConsumerConfig{Stream: streams.Events, Durable: "narrow",
		FilterSubjects: []string{"events.otp_verified"}}, func(context.Context, *event.Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx(t))
	m := b.Metrics()
	if got, want := series(t, m.HandlerTime, "consumer", "type"), []string{"narrow otp_verified"}; !slices.Equal(got, want) {
		t.Errorf("handler histograms %v, want %v", got, want)
	}
	wantDead := []string{
		"narrow otp_verified exhausted", "narrow otp_verified handler", "narrow otp_verified malformed",
		"narrow otp_verified schema", "narrow otp_verified subject",
		"narrow unknown envelope", "narrow unknown subject", "narrow unknown unknown_type",
	}
	if got := series(t, m.DeadLettered, "consumer", "type", "reason"); !slices.Equal(got, wantDead) {
		t.Errorf("dead-letter counters %v, want %v", got, wantDead)
	}
	wantConsumed := []string{"narrow otp_verified acked", "narrow otp_verified dead_lettered", "narrow otp_verified retried",
		"narrow unknown dead_lettered", "narrow unknown retried"}
	if got := series(t, m.Consumed, "consumer", "type", "outcome"); !slices.Equal(got, wantConsumed) {
		t.Errorf("consumed counters %v, want %v", got, wantConsumed)
	}
}

// series lists a collector's children by the values of these labels, sorted.
func series(t *testing.T, c prometheus.Collector, labels ...string) []string {
	t.Helper()
	ch := make(chan prometheus.Metric)
	go func() { c.Collect(ch); close(ch) }()
	var out []string
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		byName := map[string]string{}
		for _, l := range pb.GetLabel() {
			byName[l.GetName()] = l.GetValue()
		}
		var vals []string
		for _, l := range labels {
			vals = append(vals, byName[l])
		}
		out = append(out, strings.Join(vals, " "))
	}
	slices.Sort(out)
	return out
}
