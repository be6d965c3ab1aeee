package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/services/herald/app"
)

// OTPConfig sizes the OTP benchmark.
type OTPConfig struct {
	// Duration of the sustained phase: Workers clients send synchronously
	// (each waits for its delivery outcome) as fast as they can.
	Duration time.Duration
	Workers  int
	// Rate and RateDuration: the fixed-rate phase, requests started on a
	// schedule (open loop) whatever the latency.
	Rate         int
	RateDuration time.Duration
	// SimLatency is the simulated provider's answer time.
	SimLatency time.Duration
	// RawN is how many events the raw JetStream reference publishes.
	RawN int
	// Progress receives one line per phase.
	Progress io.Writer
}

// DefaultOTPConfig is what herald bench otp runs by default.
func DefaultOTPConfig() OTPConfig {
	return OTPConfig{Duration: 10 * time.Second, Workers: 128, Rate: 1000, RateDuration: 20 * time.Second,
		SimLatency: time.Millisecond, RawN: 100_000, Progress: io.Discard}
}

// OTPPhase summarises one phase of the OTP benchmark.
type OTPPhase struct {
	OK, Errors    int
	Elapsed       time.Duration
	CPU           time.Duration
	P50, P99, Max time.Duration
	FirstError    string
}

// Rate is successful sends per second.
func (l OTPPhase) Rate() float64 { return float64(l.OK) / l.Elapsed.Seconds() }

// OTPReport is the benchmark's outcome.
type OTPReport struct {
	Config    OTPConfig
	Raw       Result
	Sustained OTPPhase
	Fixed     OTPPhase
}

// otpBenchConfig is the platform under test: one DLT app on the simulated
// provider, per-phone limits on (every request uses a new number), the
// per-app token bucket off (it would cap the rate being measured).
func otpBenchConfig(simLatency time.Duration) string {
	return fmt.Sprintf(`
log: {level: info, format: json}
otp:
  defaults:
    perApp: {rate: 0}
providers:
  sim: {latency: %s}
apps:
  bench:
    deliveryPolicy: dlt_with_fallback
    providers: [sim]
    dlt:
      senderId: HERALD
      entityId: "1701000000000000001"
      templateId: "1707000000000000001"
      messageId: "100001"
      text: "{#numeric#} is your code. It expires in {#numeric#} minutes."
      variables: [{value: "{code}", tag: numeric}, {value: "{minutes}", tag: numeric}]
`, simLatency)
}

// RunOTP starts the whole platform in this process (embedded JetStream and
// every service: dispatcher, provider adapter on the simulated provider,
// incident projection, notifier on its console sink; HTTP on 127.0.0.1) and
// drives POST /v1/otp/send through real HTTP: the raw JetStream async
// publish rate on the same server first, as the reference, then the
// fixed-rate phase, then the sustained phase.
func RunOTP(ctx context.Context, cfg OTPConfig) (OTPReport, error) {
	rep := OTPReport{Config: cfg}
	dir, err := os.MkdirTemp("", "herald-bench-otp")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	a, err := app.New(app.Options{ConfigYAML: otpBenchConfig(cfg.SimLatency), DataDir: dir, HTTPAddr: "127.0.0.1:0",
		NATSListen: "127.0.0.1:0", Targets: app.AllTargets(), LogOutput: io.Discard, Stdout: io.Discard})
	if err != nil {
		return rep, err
	}
	if err := a.Start(ctx); err != nil {
		return rep, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = a.Stop(sctx)
	}()
	url := a.HTTP.URL() + "/v1/otp/send"
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: cfg.Workers * 4, MaxIdleConnsPerHost: cfg.Workers * 4, IdleConnTimeout: time.Minute}}
	var phone atomic.Int64
	send := func() (time.Duration, error) {
		body := fmt.Sprintf(`{"app":"bench","phone":"+9198%08d"}`, phone.Add(1))
		start := time.Now()
		resp, err := client.Post(url, "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			return 0, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return time.Since(start), nil
	}

	// Warm up connections, pools and the stream files.
	if _, err := closedLoop(ctx, send, cfg.Workers, time.Second); err != nil {
		return rep, err
	}
	if rep.Raw, err = RawPublish(ctx, a.Bus, cfg.RawN); err != nil {
		return rep, err
	}
	fmt.Fprintf(cfg.Progress, "raw JetStream PublishAsync+MsgID: %.0f msg/s\n", rep.Raw.Rate())
	// The incident projection folds the reference's events too: let it
	// catch up before measuring.
	time.Sleep(2 * time.Second)
	// The fixed rate runs before saturation, so that it measures the
	// platform at that rate, not the backlog and garbage the saturation
	// phase leaves behind.
	if rep.Fixed, err = openLoop(ctx, send, cfg.Rate, cfg.RateDuration); err != nil {
		return rep, err
	}
	fmt.Fprintf(cfg.Progress, "fixed %d/s: %.0f OTP/s, p50 %s p99 %s max %s, %d errors\n", cfg.Rate,
		rep.Fixed.Rate(), rep.Fixed.P50, rep.Fixed.P99, rep.Fixed.Max, rep.Fixed.Errors)
	if rep.Sustained, err = closedLoop(ctx, send, cfg.Workers, cfg.Duration); err != nil {
		return rep, err
	}
	fmt.Fprintf(cfg.Progress, "sustained (%d clients): %.0f OTP/s, p50 %s p99 %s, %d errors\n", cfg.Workers,
		rep.Sustained.Rate(), rep.Sustained.P50, rep.Sustained.P99, rep.Sustained.Errors)
	return rep, nil
}

type sender func() (time.Duration, error)

// recorder collects latencies from many goroutines.
type recorder struct {
	mu    sync.Mutex
	lat   []time.Duration
	errs  int
	first string
}

func (r *recorder) add(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.errs == 0 {
			r.first = err.Error()
		}
		r.errs++
		return
	}
	r.lat = append(r.lat, d)
}

func (r *recorder) summary(t timer) OTPPhase {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := OTPPhase{OK: len(r.lat), Errors: r.errs, FirstError: r.first, Elapsed: time.Since(t.wall), CPU: cpuTime() - t.cpu}
	if len(r.lat) == 0 {
		return l
	}
	sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] })
	at := func(q float64) time.Duration { return r.lat[min(len(r.lat)-1, int(q*float64(len(r.lat))))] }
	l.P50, l.P99, l.Max = at(0.50), at(0.99), r.lat[len(r.lat)-1]
	return l
}

// closedLoop runs workers that each send, wait for the answer, and send again.
func closedLoop(ctx context.Context, send sender, workers int, d time.Duration) (OTPPhase, error) {
	rec := &recorder{}
	t := start()
	deadline := t.wall.Add(d)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				rec.add(send())
			}
		}()
	}
	wg.Wait()
	l := rec.summary(t)
	if l.OK == 0 {
		return l, fmt.Errorf("no OTP sent: %s", l.FirstError)
	}
	return l, ctx.Err()
}

// openLoop starts one request every 1/rate whatever the latency (so a slow
// answer does not hide behind a slower request rate) and waits for all.
func openLoop(ctx context.Context, send sender, rate int, d time.Duration) (OTPPhase, error) {
	if rate <= 0 {
		return OTPPhase{}, errors.New("rate must be positive")
	}
	rec := &recorder{}
	t := start()
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		if wait := time.Until(t.wall.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec.add(send())
		}()
	}
	wg.Wait()
	l := rec.summary(t)
	if l.OK == 0 {
		return l, fmt.Errorf("no OTP sent: %s", l.FirstError)
	}
	return l, ctx.Err()
}

// Write prints the report as Markdown.
func (r OTPReport) Write(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "| measure | value |\n|---|---|\n")
	fmt.Fprintf(w, "| raw JetStream PublishAsync+MsgID (same server, same run) | %.0f msg/s |\n", r.Raw.Rate())
	s := r.Sustained
	fmt.Fprintf(w, "| sustained OTP/s (%d clients, sync send, sim latency %s, %s) | %.0f OTP/s (%d errors) |\n",
		c.Workers, c.SimLatency, c.Duration, s.Rate(), s.Errors)
	fmt.Fprintf(w, "| latency at saturation p50 / p99 | %s / %s |\n", ms(s.P50), ms(s.P99))
	fmt.Fprintf(w, "| CPU per OTP at saturation (whole process) | %.0f core-µs |\n", float64(s.CPU.Microseconds())/float64(max(s.OK, 1)))
	f := r.Fixed
	fmt.Fprintf(w, "| fixed rate %d/s for %s: achieved | %.0f OTP/s (%d errors) |\n", c.Rate, c.RateDuration, f.Rate(), f.Errors)
	fmt.Fprintf(w, "| latency at %d/s p50 / p99 / max | %s / %s / %s |\n", c.Rate, ms(f.P50), ms(f.P99), ms(f.Max))
	fmt.Fprintf(w, "\nGoals: ≥ 5,000 OTP/s sustained: %s; p99 ≤ 10 ms at 1,000 OTP/s: %s.\n",
		verdict(s.Rate() >= 5000), verdict(f.P99 <= 10*time.Millisecond))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
