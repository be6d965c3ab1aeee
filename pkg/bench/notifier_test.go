package bench_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/bench"
	"github.com/heraldhq/herald/pkg/heraldtest"
)

// BenchmarkNotifier measures the notifier against a fake Slack that
// enforces ~1 message/s per channel (burst 3): latency from incident_opened
// in INCIDENTS to the post under the rate limit (target p99 ≤ 200 ms), then
// 1,000 incidents across 50 channels delivered at the rate limit, none lost
// or duplicated; raw JetStream latencies are measured in the same run.
//
//	go test ./pkg/bench -run '^$' -bench Notifier -benchtime 1x
func BenchmarkNotifier(b *testing.B) {
	for range b.N {
		js := heraldtest.JetStream(b)
		s := heraldtest.StartSlack(b, heraldtest.WithSlackRate(1, 3))
		target := bench.SlackTarget{APIURL: s.APIURL, Token: s.Token}
		for i := range 50 {
			id := fmt.Sprintf("C0BENCH%02d", i)
			s.AddChannel(id, fmt.Sprintf("bench-%02d", i))
			target.Channels = append(target.Channels, id)
		}
		target.Received = func() []bench.Received {
			var out []bench.Received
			for _, c := range s.AcceptedCalls() {
				out = append(out, bench.Received{Time: c.Time, Channel: c.Channel, Text: c.Text,
					Root: c.Method == "chat.postMessage" && c.ThreadTS == ""})
			}
			return out
		}
		target.RateLimited = func() int {
			n := 0
			for _, c := range s.Calls() {
				if c.Status == http.StatusTooManyRequests {
					n++
				}
			}
			return n
		}
		target.Violations = func() int { return len(s.RetryAfterViolations()) }
		var progress io.Writer = io.Discard
		if testing.Verbose() {
			progress = os.Stderr
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		r, err := bench.Notifier(ctx, js, target, bench.DefaultNotifierConfig(), slog.New(slog.DiscardHandler), progress)
		cancel()
		r.Write(os.Stdout)
		if err != nil {
			b.Fatal(err)
		}
		if r.Lost > 0 || r.Duplicated > 0 || r.RetryAfterViolations > 0 {
			b.Errorf("%d lost, %d duplicated, %d calls before Retry-After", r.Lost, r.Duplicated, r.RetryAfterViolations)
		}
		b.ReportMetric(float64(r.Latency.P99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(r.Latency.P50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(r.RawRoundTrip.P99.Microseconds())/1000, "raw-p99-ms")
		b.ReportMetric(r.BurstElapsed.Seconds(), "burst-s")
	}
}
