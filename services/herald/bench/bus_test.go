package bench_test

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/bench"
)

// BenchmarkBus runs the backbone comparison in one run, on one embedded
// server: typed publish against raw PublishAsync with WithMsgID, typed
// consume against raw Consume + Ack (medians of interleaved rounds).
//
//	go test ./pkg/bench -run '^$' -bench Bus -benchtime 1x
func BenchmarkBus(b *testing.B) {
	for range b.N {
		js := heraldtest.JetStream(b)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		var progress io.Writer = io.Discard
		if testing.Verbose() {
			progress = os.Stderr
		}
		r, err := bench.CompareBus(ctx, js, 200_000, 3, progress)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		r.Write(os.Stdout)
		b.ReportMetric(bench.Median(r.Publish.Raw).Rate(), "raw-pub/s")
		b.ReportMetric(bench.Median(r.Publish.Typed).Rate(), "typed-pub/s")
		b.ReportMetric(r.Publish.Ratio()*100, "pub-%")
		b.ReportMetric(bench.Median(r.Consume.Raw).Rate(), "raw-cons/s")
		b.ReportMetric(bench.Median(r.Consume.Typed).Rate(), "typed-cons/s")
		b.ReportMetric(r.Consume.Ratio()*100, "cons-%")
	}
}
