package bench_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/heraldhq/herald/services/herald/bench"
)

// BenchmarkOTP drives POST /v1/otp/send against the simulated provider with
// the whole platform in this process, and the raw JetStream reference in the
// same run (see herald bench otp for the full-length run).
//
//	go test ./pkg/bench -run '^$' -bench OTP -benchtime 1x
func BenchmarkOTP(b *testing.B) {
	for range b.N {
		cfg := bench.DefaultOTPConfig()
		cfg.Duration, cfg.RateDuration, cfg.RawN = 5*time.Second, 5*time.Second, 50_000
		if testing.Verbose() {
			cfg.Progress = os.Stderr
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		r, err := bench.RunOTP(ctx, cfg)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		r.Write(os.Stdout)
		b.ReportMetric(r.Raw.Rate(), "raw-pub/s")
		b.ReportMetric(r.Sustained.Rate(), "otp/s")
		b.ReportMetric(float64(r.Fixed.P50.Microseconds())/1000, "p50-ms@rate")
		b.ReportMetric(float64(r.Fixed.P99.Microseconds())/1000, "p99-ms@rate")
	}
}
