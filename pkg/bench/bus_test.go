package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/bench"
	"github.com/heraldhq/herald/pkg/heraldtest"
)

// BenchmarkBus runs the comparison in one run: typed publish against
// raw PublishAsync with WithMsgID, typed consume against raw Consume + Ack.
// Run with: go test ./pkg/bench -run '^$' -bench Bus -benchtime 1x
func BenchmarkBus(b *testing.B) {
	const n = 200_000
	for range b.N {
		js := heraldtest.JetStream(b)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		raw, err := bench.RawPublish(ctx, js, n)
		if err != nil {
			b.Fatal(err)
		}
		typed, err := bench.TypedPublish(ctx, js, n)
		if err != nil {
			b.Fatal(err)
		}
		rawC, err := bench.RawConsume(ctx, js, 2*n, "raw")
		if err != nil {
			b.Fatal(err)
		}
		typedC, err := bench.TypedConsume(ctx, js, 2*n, "typed")
		if err != nil {
			b.Fatal(err)
		}
		cancel()
		for _, r := range []bench.Result{raw, typed, rawC, typedC} {
			b.Log(r)
		}
		b.ReportMetric(raw.Rate(), "raw-pub/s")
		b.ReportMetric(typed.Rate(), "typed-pub/s")
		b.ReportMetric(typed.Rate()/raw.Rate()*100, "pub-%")
		b.ReportMetric(rawC.Rate(), "raw-cons/s")
		b.ReportMetric(typedC.Rate(), "typed-cons/s")
		b.ReportMetric(typedC.Rate()/rawC.Rate()*100, "cons-%")
	}
}
