package bench_test

import (
	"context"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/pkg/incident"
	"github.com/heraldhq/herald/services/herald/bench"
)

// BenchmarkIncidentRebuild writes HERALD_BENCH_EVENTS events (default
// 200,000; the figure is 1,000,000: herald bench incidents) and
// compares a rebuild of the incident projection with the default rules
// against a raw ordered consumer, on one embedded server, in one run.
//
//	go test ./pkg/bench -run '^$' -bench IncidentRebuild -benchtime 1x
func BenchmarkIncidentRebuild(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("HERALD_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	for range b.N {
		js := heraldtest.JetStream(b)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		rules, err := incident.DefaultRules(js.Catalog)
		if err != nil {
			b.Fatal(err)
		}
		var progress io.Writer
		if testing.Verbose() {
			progress = os.Stderr
		}
		last, err := bench.IncidentLog(ctx, js, n, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), progress)
		if err != nil {
			b.Fatal(err)
		}
		r := bench.IncidentReport{Events: last, Rebuild: bench.Pair{Name: "rebuild"}}
		for range 3 {
			raw, err := bench.RawReplay(ctx, js, last)
			if err != nil {
				b.Fatal(err)
			}
			reb, eng, tr, err := bench.IncidentRebuild(ctx, js, rules)
			if err != nil {
				b.Fatal(err)
			}
			r.Rebuild.Raw, r.Rebuild.Typed = append(r.Rebuild.Raw, raw), append(r.Rebuild.Typed, reb)
			r.Transitions, r.Incidents = tr, len(eng.Incidents())
		}
		cancel()
		r.Write(os.Stdout)
		b.ReportMetric(bench.Median(r.Rebuild.Raw).Rate(), "raw-ev/s")
		b.ReportMetric(bench.Median(r.Rebuild.Typed).Rate(), "rebuild-ev/s")
		b.ReportMetric(r.Rebuild.Ratio()*100, "rebuild-%")
	}
}

// BenchmarkEngineApply is the fold alone (no JetStream): records already
// read, through validation, extraction and the default rules.
func BenchmarkEngineApply(b *testing.B) {
	js := heraldtest.JetStream(b)
	ctx := context.Background()
	rules, err := incident.DefaultRules(js.Catalog)
	if err != nil {
		b.Fatal(err)
	}
	last, err := bench.IncidentLog(ctx, js, 100_000, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), nil)
	if err != nil {
		b.Fatal(err)
	}
	var recs []incident.Record
	if err := incident.Read(ctx, js.JS, incident.ReadOptions{}, func(r *incident.Record, _ incident.Position) error {
		c := *r
		c.Data = append([]byte(nil), r.Data...)
		recs = append(recs, c)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	if uint64(len(recs)) != last {
		b.Fatalf("read %d of %d", len(recs), last)
	}
	b.ResetTimer()
	for range b.N {
		e := incident.NewEngine(incident.Options{Catalog: js.Catalog, Rules: rules})
		for j := range recs {
			e.Apply(&recs[j])
			e.Drain()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/event")
}

// BenchmarkActiveGroups measures the projection's memory with 100,000
// active groups (each with an open incident).
func BenchmarkActiveGroups(b *testing.B) {
	cat, err := event.NewCatalog()
	if err != nil {
		b.Fatal(err)
	}
	rules, err := incident.DefaultRules(cat)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		m, _ := bench.ActiveGroups(cat, rules, 100_000)
		b.ReportMetric(float64(m.HeapBytes)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(m.RSSBytes)/(1<<20), "rss-MiB")
	}
}
