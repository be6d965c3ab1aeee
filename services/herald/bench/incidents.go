package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/incident"
	"github.com/heraldhq/herald/streams"
)

// IncidentLog fills EVENTS with n events the default rules care about, at
// explicit event times 1 ms apart from t0: OTP sends of 500 apps (a few of
// them failing hard for a while), provider answers of 8 providers (one
// failing for a stretch, one refused for payment), DLT hard failures,
// producers' integration calls of 40 integrations, and unrelated OTP
// events. It returns the stream's last sequence.
func IncidentLog(ctx context.Context, b *bus.Bus, n int, t0 time.Time, progress io.Writer) (uint64, error) {
	r := rand.New(rand.NewPCG(7, 11))
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		typ, data := sampleIncidentEvent(r, i, n)
		h := nats.Header{}
		id := "bench-" + strconv.Itoa(i)
		h[event.HeaderSpecVersion] = []string{event.SpecVersion}
		h[event.HeaderID] = []string{id}
		h[event.HeaderType] = []string{typ}
		h[event.HeaderSource] = []string{"bench"}
		h[event.HeaderTime] = []string{at.Format(time.RFC3339Nano)}
		h[event.HeaderRequestID] = []string{"req-" + strconv.Itoa(i)}
		h[event.HeaderMsgID] = []string{id}
		if _, err := b.JS.PublishMsgAsync(&nats.Msg{Subject: "events." + typ, Header: h, Data: data}); err != nil {
			return 0, err
		}
		if progress != nil && (i+1)%200_000 == 0 {
			fmt.Fprintf(progress, "  %d/%d events written\n", i+1, n)
		}
	}
	select {
	case <-b.JS.PublishAsyncComplete():
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	s, err := b.JS.Stream(ctx, streams.Events)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

func sampleIncidentEvent(r *rand.Rand, i, n int) (string, []byte) {
	phase := i * 10 / max(n, 1) // ten phases; incidents in some of them
	k := r.IntN(100)
	app := "app" + strconv.Itoa(r.IntN(500))
	prov := "prov" + strconv.Itoa(r.IntN(8))
	switch {
	case k < 55:
		st := "delivered"
		fail := 2
		if app < "app05" && (phase == 2 || phase == 3 || phase == 7) {
			fail = 70
		}
		if r.IntN(100) < fail {
			st = "failed"
		}
		return "otp_delivery_completed", fmt.Appendf(nil, `{"app":%q,"status":%q,"deliveryMode":"dlt","provider":%q,"attempts":1,"latencyMs":%d}`, app, st, prov, 50+r.IntN(400))
	case k < 75:
		if prov == "prov3" && phase >= 4 && phase <= 6 {
			return "provider_response_failed", fmt.Appendf(nil, `{"app":%q,"provider":%q,"route":"dlt","statusCode":504,"classification":"transient","attempt":1,"latencyMs":30000,"error":"gateway timeout"}`, app, prov)
		}
		return "provider_response_received", fmt.Appendf(nil, `{"app":%q,"provider":%q,"route":"dlt","statusCode":200,"classification":"ok","attempt":1,"latencyMs":%d}`, app, prov, 40+r.IntN(200))
	case k < 85:
		class := "transient"
		code := 503
		if prov == "prov5" && phase == 8 {
			class, code = "payment_required", 401
		}
		return "provider_response_failed", fmt.Appendf(nil, `{"app":%q,"provider":%q,"route":"dlt","statusCode":%d,"classification":%q,"attempt":1,"latencyMs":%d}`, app, prov, code, class, 100+r.IntN(900))
	case k < 87:
		return "otp_dlt_hard_failure", fmt.Appendf(nil, `{"app":%q,"provider":%q,"route":"dlt","reason":"template_rejected","classification":"template_rejected","statusCode":400,"deliveryPolicy":"dlt_only"}`, app, prov)
	case k < 97:
		code := 200
		if r.IntN(100) < 5 || phase == 5 && r.IntN(2) == 0 {
			code = 503
		}
		return "integration_call_completed", fmt.Appendf(nil, `{"integration":"int%d","operation":"charges.create","statusCode":%d,"latencyMs":%d}`, r.IntN(40), code, 20+r.IntN(300))
	default:
		return "otp_verified", fmt.Appendf(nil, `{"app":%q,"attempts":1}`, app)
	}
}

// RawReplay reads EVENTS from the start with an ordered consumer, touching
// each message's data: JetStream's own replay cost, the reference.
func RawReplay(ctx context.Context, b *bus.Bus, last uint64) (Result, error) {
	s, err := b.JS.Stream(ctx, streams.Events)
	if err != nil {
		return Result{}, err
	}
	t := start()
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return Result{}, err
	}
	it, err := c.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return Result{}, err
	}
	defer it.Stop()
	n, size := 0, 0
	for uint64(n) < last { // EVENTS denies deletes: sequences have no gaps
		m, err := it.Next()
		if err != nil {
			return Result{}, err
		}
		n++
		size += len(m.Data())
	}
	if size == 0 {
		return Result{}, errors.New("raw replay read no data")
	}
	return t.result("raw OrderedConsumer replay", n), nil
}

// IncidentRebuild folds the whole of EVENTS into a fresh projection with the
// given rules: envelope, validation of every event a rule reads, field
// extraction, windows, severities, transitions (not published: a rebuild's
// transitions are already in INCIDENTS).
func IncidentRebuild(ctx context.Context, b *bus.Bus, rules *incident.Rules) (Result, *incident.Engine, int, error) {
	e := incident.NewEngine(incident.Options{Catalog: b.Catalog, Rules: rules, KeepResolved: 1 << 30})
	transitions := 0
	t := start()
	n := 0
	err := incident.Read(ctx, b.JS, incident.ReadOptions{MaxSkew: 0}, func(rec *incident.Record, _ incident.Position) error {
		e.Apply(rec)
		transitions += len(e.Drain())
		n++
		return nil
	})
	if err != nil {
		return Result{}, nil, 0, err
	}
	return t.result("incident rebuild (default rules)", n), e, transitions, nil
}

// IncidentReport is the incident benchmark.
type IncidentReport struct {
	Events      uint64
	Rebuild     Pair
	Transitions int
	Incidents   int
	Invalid     int
	Memory      MemoryResult
	Latency     LatencyResult
}

// MemoryResult is the projection's footprint with many active groups.
type MemoryResult struct {
	Groups    int
	Incidents int
	HeapBytes uint64 // live heap after GC
	RSSBytes  uint64 // process resident set
	// A checkpoint: JSON bytes, compressed bytes, time to write, and the
	// process RSS after it.
	Snapshot, SnapshotCompressed int
	SnapshotTime                 time.Duration
	RSSAfterSnapshot             uint64
}

type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += len(p)
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

// ActiveGroups builds a projection with `groups` active groups of the
// default OTP failure-rate rule (each app with traffic in the window and
// failures, so that every group holds a window, a pending severity and an
// open incident) and measures its memory, without JetStream.
func ActiveGroups(cat *event.Catalog, rules *incident.Rules, groups int) (MemoryResult, *incident.Engine) {
	runtime.GC()
	e := incident.NewEngine(incident.Options{Catalog: cat, Rules: rules})
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC).UnixNano()
	seq := uint64(0)
	data := make([][]byte, 2)
	for j := range 12 { // 12 sends per app inside the 5 min window, half failed
		for g := range groups {
			seq++
			st := j % 2
			s := "delivered"
			if st == 1 {
				s = "failed"
			}
			data[st] = fmt.Appendf(data[st][:0], `{"app":"app%07d","status":%q,"attempts":1,"latencyMs":10}`, g, s)
			e.Apply(&incident.Record{Seq: seq, Time: t0 + int64(j)*int64(10*time.Second) + int64(g), Type: "otp_delivery_completed",
				ID: "e", RequestID: "req-" + strconv.Itoa(g), Data: data[st]})
			e.Drain()
		}
	}
	runtime.GC()
	debug.FreeOSMemory() // RSS then counts what is live, not garbage not yet returned
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rssBytes := rss()
	// A checkpoint of that state, as the service writes it: streamed JSON
	// through s2 compression.
	var z countingWriter
	zw := s2.NewWriter(&z)
	cw := &countingWriter{w: zw}
	snapStart := time.Now()
	_ = e.WriteSnapshot(cw)
	_ = zw.Close()
	snapTime := time.Since(snapStart)
	peak := rss()
	open := 0
	for _, inc := range e.Incidents() {
		if inc.State == event.StateOpen {
			open++
		}
	}
	return MemoryResult{Groups: e.Groups(), Incidents: open, HeapBytes: ms.HeapAlloc, RSSBytes: rssBytes,
		Snapshot: cw.n, SnapshotCompressed: z.n, SnapshotTime: snapTime, RSSAfterSnapshot: peak}, e
}

// rss reads the process's resident set size from /proc (0 elsewhere).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// LatencyResult is live detection latency: from the moment a P1 condition
// became true to incident_opened arriving from INCIDENTS.
type LatencyResult struct {
	// EventDriven: the event that makes the condition true (its `for`
	// already elapsed) is published; Clock: the `for` elapses with no new
	// event, so the projection learns it from a clock tick.
	EventDriven, Clock []time.Duration
}

// Percentile returns the p-th percentile (0–100) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}

// LatencyRules are the default OTP failure-rate rule with P1 only: once
// with `for: 0` (the event completes the condition) and once with `for: 2s`
// (the wall clock completes it), so that a trial takes seconds, not 5 min.
const LatencyRules = `
rules:
  - name: p1-event
    kind: ratio
    match: {types: [otp_delivery_completed], where: ["provider = latency-event"]}
    failed: {where: ["status = failed"]}
    groupBy: [app]
    window: 5m
    resolution: 15s
    minVolume: 10
    severities: [{level: P1, above: 0.5}]
  - name: p1-clock
    kind: ratio
    match: {types: [otp_delivery_completed], where: ["provider = latency-clock"]}
    failed: {where: ["status = failed"]}
    groupBy: [app]
    window: 5m
    resolution: 15s
    minVolume: 10
    severities: [{level: P1, above: 0.5, for: 2s}]
`

// MeasureLatency runs trials against a live incident service that folds
// EVENTS of b (started by the caller with LatencyRules): each trial sends
// ten failed OTP sends of a fresh app and times incident_opened.
func MeasureLatency(ctx context.Context, b *bus.Bus, trials int) (LatencyResult, error) {
	var res LatencyResult
	opened := make(chan event.IncidentOpened, 16)
	sub, err := b.NC.Subscribe("incidents.incident_opened.>", func(m *nats.Msg) {
		e, err := event.FromMsg(m.Subject, m.Header, m.Data)
		if err == nil && b.Catalog.Decode(e) == nil {
			if d, ok := event.As[event.IncidentOpened](e); ok {
				opened <- d
			}
		}
	})
	if err != nil {
		return res, err
	}
	defer sub.Unsubscribe()
	for i := range trials {
		for _, mode := range []string{"event", "clock"} {
			app := fmt.Sprintf("lat-%s-%d", mode, i)
			var evs []*event.Event
			now := time.Now().UTC()
			for j := range 10 {
				evs = append(evs, event.New("bench", event.OTPDeliveryCompleted{App: app, Status: "failed", Provider: "latency-" + mode, Attempts: 1},
					event.WithTime(now.Add(time.Duration(j)*time.Microsecond))))
			}
			sent := time.Now()
			if _, err := b.Publish(ctx, evs...); err != nil {
				return res, err
			}
			select {
			case d := <-opened:
				got := time.Now()
				if d.Group["app"] != app {
					return res, fmt.Errorf("latency: got an incident for %v, want %s", d.Group, app)
				}
				if mode == "event" {
					// From the publish of the events, the last of which
					// completes the condition (ack round trip included).
					res.EventDriven = append(res.EventDriven, got.Sub(sent))
				} else {
					// From the moment the condition became true: its onset,
					// the last event's time + 2 s.
					res.Clock = append(res.Clock, got.Sub(d.OpenedAt))
				}
			case <-time.After(10 * time.Second):
				return res, errors.New("latency: no incident_opened within 10s")
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
	}
	return res, nil
}

// Write prints the report as Markdown.
func (r IncidentReport) Write(w io.Writer) {
	raw, reb := Median(r.Rebuild.Raw), Median(r.Rebuild.Typed)
	fmt.Fprintf(w, "| operation | events | raw JetStream ev/s | Herald ev/s | ratio | raw core-µs/ev | Herald core-µs/ev |\n|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(w, "| rebuild incidents from EVENTS (default rules) | %d | %.0f | %.0f | %.0f %% | %.2f | %.2f |\n",
		r.Events, raw.Rate(), reb.Rate(), r.Rebuild.Ratio()*100, us(raw.CPUPerMsg()), us(reb.CPUPerMsg()))
	fmt.Fprintf(w, "\nrebuild produced %d transitions, %d incidents (%d events failed validation)\n", r.Transitions, r.Incidents, r.Invalid)
	if r.Memory.Groups > 0 {
		m := r.Memory
		fmt.Fprintf(w, "\n| active groups | open incidents | live heap | process RSS | checkpoint (JSON → s2) | checkpoint time | RSS after checkpoint |\n|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(w, "| %d | %d | %.0f MiB | %.0f MiB | %.0f → %.0f MiB | %s | %.0f MiB |\n", m.Groups, m.Incidents,
			float64(m.HeapBytes)/(1<<20), float64(m.RSSBytes)/(1<<20), float64(m.Snapshot)/(1<<20), float64(m.SnapshotCompressed)/(1<<20),
			m.SnapshotTime.Round(time.Millisecond), float64(m.RSSAfterSnapshot)/(1<<20))
	}
	if n := len(r.Latency.EventDriven); n > 0 {
		fmt.Fprintf(w, "\n| live detection (P1 → incident_opened in INCIDENTS) | trials | p50 | p95 | max |\n|---|---|---|---|---|\n")
		for _, x := range []struct {
			name string
			ds   []time.Duration
		}{{"completing event published", r.Latency.EventDriven}, {"`for` elapsed, no event (clock tick)", r.Latency.Clock}} {
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s |\n", x.name, len(x.ds), Percentile(x.ds, 50).Round(time.Microsecond*100),
				Percentile(x.ds, 95).Round(time.Microsecond*100), Percentile(x.ds, 100).Round(time.Microsecond*100))
		}
	}
}
