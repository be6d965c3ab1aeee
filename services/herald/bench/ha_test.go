package bench_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/heraldhq/herald/pkg/heraldtest"
	"github.com/heraldhq/herald/services/herald/bench"
)

// BenchmarkHA runs the platform on deploy/nats's three servers (one
// process, operator mode, TLS, R3 streams): OTP/s and latency against one
// embedded server in the same run, sends while the leader of EVENTS is
// killed and restarted, and the standbys' takeover of the incident writer
// and the notifier. It is a Go benchmark, not a herald bench command: the
// cluster starter is test support (pkg/heraldtest).
//
//	go test ./pkg/bench -run '^$' -bench HA -benchtime 1x
//
// With -short the phases are a few seconds long: a quick look, not figures.
func BenchmarkHA(b *testing.B) {
	for range b.N {
		c := heraldtest.StartDeployCluster(b, "../../../deploy/nats")
		cfg := bench.DefaultHAConfig()
		cfg.Progress = os.Stderr
		if testing.Short() { // a quick look, not figures
			cfg.OTP.Duration, cfg.OTP.RateDuration, cfg.OTP.RawN, cfg.OTP.Rate = 2*time.Second, 2*time.Second, 5000, 100
			cfg.Before, cfg.Down, cfg.After, cfg.Trials = time.Second, 3*time.Second, 4*time.Second, 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		r, err := bench.RunHA(ctx, bench.Cluster{URLs: c.URLs, CredsDir: c.CredsDir, CAFile: c.TLS.CA, Replicas: 3,
			Kill: c.Kill, Restart: c.Restart}, cfg)
		cancel()
		r.Write(os.Stdout)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.Single.Sustained.Rate(), "otp/s-1")
		b.ReportMetric(r.Clustered.Sustained.Rate(), "otp/s-3")
		b.ReportMetric(float64(r.Clustered.Fixed.P99.Microseconds())/1000, "p99-ms-3")
		b.ReportMetric(float64(r.Kill.Load.Slowest.Microseconds())/1000, "kill-slowest-ms")
		b.ReportMetric(float64(r.Kill.Load.Errors), "kill-errors")
	}
}
