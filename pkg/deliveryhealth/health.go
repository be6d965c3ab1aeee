// Package deliveryhealth is the delivery-health projection: per app and per
// provider/route, over a recent window of EVENTS, how many OTPs were sent,
// delivered, failed and fell back, and the p50/p99 latency, with a series of
// buckets for charts. The console and GET /v1/health/delivery both serve it,
// so a chart and the JSON behind it cannot disagree.
//
// Per app the facts are otp_delivery_completed (one per OTP: sent counts
// them all, delivered and failed by status; latency is the request's, from
// generation to completion) and otp_dlt_fallback to a later leg. Per
// provider/route they are the provider calls, provider_response_received
// and provider_response_failed (latency is the call's), and the fallbacks
// away from that provider/route.
package deliveryhealth

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/streams"
)

// Types are the event types the projection folds.
func Types() []event.Type {
	return []event.Type{event.OTPDeliveryCompleted{}.EventType(), event.OTPDLTFallback{}.EventType(),
		event.ProviderResponseReceived{}.EventType(), event.ProviderResponseFailed{}.EventType()}
}

// Buckets is how many points a row's series has.
const Buckets = 60

// Bucket is one slice of the window.
type Bucket struct {
	Start     time.Time `json:"start"`
	Delivered int       `json:"delivered"`
	Failed    int       `json:"failed"`
}

// Row is the health of one app or one provider/route.
type Row struct {
	App      string `json:"app,omitempty"`
	Provider string `json:"provider,omitempty"`
	Route    string `json:"route,omitempty"`
	// Sent is every OTP completed (per app) or every provider call (per route).
	Sent      int      `json:"sent"`
	Delivered int      `json:"delivered"`
	Failed    int      `json:"failed"`
	Fallback  int      `json:"fallback"`
	P50Ms     float64  `json:"p50Ms"`
	P99Ms     float64  `json:"p99Ms"`
	Series    []Bucket `json:"series"`

	latencies []float64
}

// Report is the projection over one window.
type Report struct {
	From   time.Time     `json:"from"`
	To     time.Time     `json:"to"`
	Step   time.Duration `json:"stepNs"`
	Apps   []*Row        `json:"apps"`
	Routes []*Row        `json:"routes"`
	// Seq is the last EVENTS sequence folded (0: none).
	Seq uint64 `json:"seq"`
}

// Fold accumulates events into a report of the window [from, to).
type Fold struct {
	from, to time.Time
	step     time.Duration
	apps     map[string]*Row
	routes   map[[2]string]*Row
	seq      uint64
}

// NewFold starts a fold of the window [from, to).
func NewFold(from, to time.Time) *Fold {
	step := max(to.Sub(from)/Buckets, time.Nanosecond)
	return &Fold{from: from, to: to, step: step, apps: map[string]*Row{}, routes: map[[2]string]*Row{}}
}

// Add folds one event; events outside the window (by event time) and of
// other types are ignored.
func (f *Fold) Add(e *event.Event) {
	f.seq = max(f.seq, e.Sequence)
	if e.Time.Before(f.from) || !e.Time.Before(f.to) {
		return
	}
	switch d := e.Data.(type) {
	case event.OTPDeliveryCompleted:
		r := f.app(d.App)
		r.Sent++
		switch d.Status {
		case "delivered":
			r.Delivered++
			f.bucket(r, e.Time).Delivered++
		case "failed":
			r.Failed++
			f.bucket(r, e.Time).Failed++
		}
		r.latencies = append(r.latencies, d.LatencyMs)
	case event.OTPDLTFallback:
		if d.Leg == 0 {
			return // the dispatch's own leg off DLT: not a fallback from a failure
		}
		f.app(d.App).Fallback++
		if d.FromProvider != "" {
			f.route(d.FromProvider, d.FromRoute).Fallback++
		}
	case event.ProviderResponseReceived:
		r := f.route(d.Provider, d.Route)
		r.Sent++
		r.Delivered++
		f.bucket(r, e.Time).Delivered++
		r.latencies = append(r.latencies, d.LatencyMs)
	case event.ProviderResponseFailed:
		r := f.route(d.Provider, d.Route)
		r.Sent++
		r.Failed++
		f.bucket(r, e.Time).Failed++
		r.latencies = append(r.latencies, d.LatencyMs)
	}
}

func (f *Fold) app(name string) *Row {
	r := f.apps[name]
	if r == nil {
		r = &Row{App: name, Series: f.series()}
		f.apps[name] = r
	}
	return r
}

func (f *Fold) route(provider, route string) *Row {
	k := [2]string{provider, route}
	r := f.routes[k]
	if r == nil {
		r = &Row{Provider: provider, Route: route, Series: f.series()}
		f.routes[k] = r
	}
	return r
}

func (f *Fold) series() []Bucket {
	s := make([]Bucket, Buckets)
	for i := range s {
		s[i].Start = f.from.Add(time.Duration(i) * f.step)
	}
	return s
}

func (f *Fold) bucket(r *Row, t time.Time) *Bucket {
	i := min(int(t.Sub(f.from)/f.step), Buckets-1)
	return &r.Series[i]
}

// Report is the fold's result: rows sorted by app, then provider and route.
func (f *Fold) Report() *Report {
	rep := &Report{From: f.from, To: f.to, Step: f.step, Seq: f.seq, Apps: []*Row{}, Routes: []*Row{}}
	for _, r := range f.apps {
		rep.Apps = append(rep.Apps, r.finish())
	}
	for _, r := range f.routes {
		rep.Routes = append(rep.Routes, r.finish())
	}
	sort.Slice(rep.Apps, func(i, j int) bool { return rep.Apps[i].App < rep.Apps[j].App })
	sort.Slice(rep.Routes, func(i, j int) bool {
		a, b := rep.Routes[i], rep.Routes[j]
		return a.Provider < b.Provider || a.Provider == b.Provider && a.Route < b.Route
	})
	return rep
}

func (r *Row) finish() *Row {
	slices.Sort(r.latencies)
	r.P50Ms, r.P99Ms = quantile(r.latencies, 0.5), quantile(r.latencies, 0.99)
	return r
}

// quantile is the nearest-rank quantile of sorted values (0 for none).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Read folds the EVENTS of the window [from, to) that the projection uses.
// The read starts at the storage time from (event time and storage time
// differ by the publishing delay; an event published late but dated inside
// the window is counted when it was stored inside it).
func Read(ctx context.Context, b *bus.Bus, from, to time.Time) (*Report, error) {
	var subjects []string
	for _, t := range Types() {
		subjects = append(subjects, string(event.LogEvents)+"."+string(t))
	}
	start := from
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start}
	f := NewFold(from, to)
	err := b.Scan(ctx, streams.Events, bus.ScanOptions{Consumer: cfg}, func(m jetstream.Msg, pos bus.Position) error {
		e, _, err := b.Decode(m)
		if err != nil {
			return nil // not an event the projection can use; the consumers dead-letter it
		}
		e.Sequence = pos.Seq
		f.Add(e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("delivery health: %w", err)
	}
	return f.Report(), nil
}
