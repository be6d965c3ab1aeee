package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/heraldhq/herald/pkg/access"
	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/client"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/streams"
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
	// NoAuth runs the platform on an open server of the benchmark's own
	// instead of its embedded server in operator mode: the same platform,
	// clients and credentials, without the server's authentication and
	// permission checks — the reference for the cost of security. A
	// benchmark-only switch: nothing in herald serve's configuration
	// reaches it.
	NoAuth bool
	// Cluster, when set, runs the platform on that cluster instead.
	Cluster *Cluster
	// PhoneBase offsets the phone numbers sent to: platforms that share a
	// cluster (and its per-phone history) send to ranges of their own.
	PhoneBase int64
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
	OK, Errors int
	// Pending counts sends answered 202 pending (accepted, outcome not
	// known within the sync timeout); Slowest is the longest answer of all,
	// pending ones included.
	Pending       int
	Slowest       time.Duration
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

// Cluster is an external NATS cluster the platform runs on (the deploy/nats
// nodes in operator mode, with TLS): where it is, the roles' credentials and
// the CA of its certificates, and the HA benchmark's controls over its
// nodes. The benchmark calls Kill and Restart from its own goroutine.
type Cluster struct {
	URLs     string
	CredsDir string
	CAFile   string
	Replicas int
	Kill     func(name string)
	Restart  func(name string)
}

// platform is the platform under test and a synchronous sender of OTPs.
type platform struct {
	app  *app.App
	send sender
	stop func()
}

// startPlatform starts the whole platform in this process with the OTP
// benchmark's configuration, as herald serve would: on its own embedded
// server in operator mode (every service on its role's credentials), on
// cfg.Cluster when set, or, with cfg.NoAuth, on an open server of the
// benchmark's own (see OTPConfig.NoAuth).
func startPlatform(ctx context.Context, cfg OTPConfig, targets []string) (*platform, error) {
	dir, err := os.MkdirTemp("", "herald-bench-otp")
	if err != nil {
		return nil, err
	}
	cleanup := []func(){func() { os.RemoveAll(dir) }}
	undo := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	yaml := otpBenchConfig(cfg.SimLatency)
	opts := app.Options{DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSListen: "127.0.0.1:0", Targets: targets,
		LogOutput: io.Discard, Stdout: io.Discard}
	switch {
	case cfg.Cluster != nil && cfg.NoAuth:
		undo()
		return nil, errors.New("bench: NoAuth runs on the benchmark's own server, not on a cluster")
	case cfg.Cluster != nil:
		opts.NATSURL, opts.NATSCredsDir = cfg.Cluster.URLs, cfg.Cluster.CredsDir
		yaml = fmt.Sprintf("nats: {caFile: %q}\nstreams: {replicas: %d}\n", cfg.Cluster.CAFile, max(cfg.Cluster.Replicas, 1)) + yaml
	case cfg.NoAuth:
		srv, creds, err := openServer(filepath.Join(dir, "open"))
		if err != nil {
			undo()
			return nil, err
		}
		cleanup = append(cleanup, func() { srv.Shutdown(); srv.WaitForShutdown() })
		opts.NATSURL, opts.NATSCredsDir = srv.ClientURL(), creds
	}
	opts.ConfigYAML = yaml
	a, err := app.New(opts)
	if err != nil {
		undo()
		return nil, err
	}
	if err := a.Start(ctx); err != nil {
		undo()
		return nil, err
	}
	p := &platform{app: a}
	p.stop = func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = a.Stop(sctx)
		undo()
	}
	p.send = otpSender(a.HTTP.URL(), max(cfg.Workers, 16), cfg.PhoneBase)
	return p, nil
}

// otpSender sends one synchronous OTP per call through the producers' Go
// client (pkg/client: what a producer would use, its idempotency key per
// send included), each to a new phone number after phoneBase, on
// connections kept for that many workers. Retries are off: a failure is
// measured, not hidden.
func otpSender(baseURL string, workers int, phoneBase int64) sender {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: workers * 4, MaxIdleConnsPerHost: workers * 4, IdleConnTimeout: time.Minute}}
	c := client.New(baseURL, client.WithHTTPClient(hc), client.WithRetryFor(0))
	var phone atomic.Int64
	phone.Store(phoneBase)
	return func() (time.Duration, error) {
		start := time.Now()
		sent, err := c.SendOTP(context.Background(), client.Send{App: "bench", Phone: fmt.Sprintf("+9198%08d", phone.Add(1))})
		if err != nil {
			return 0, err
		}
		if sent.Status != "sent" {
			// Accepted, its outcome not known within the sync timeout.
			return time.Since(start), fmt.Errorf("%w: %s", errPending, sent.Status)
		}
		return time.Since(start), nil
	}
}

// errPending is a synchronous send answered 202 pending: accepted, its
// delivery outcome not known before the sync timeout.
var errPending = errors.New("pending")

// RunOTP starts the whole platform in this process (embedded JetStream and
// every service: dispatcher, provider adapter on the simulated provider,
// incident projection, notifier on its console sink; HTTP on 127.0.0.1) and
// drives POST /v1/otp/send through real HTTP: the raw JetStream async
// publish rate on the same server first, as the reference, then the
// fixed-rate phase, then the sustained phase.
func RunOTP(ctx context.Context, cfg OTPConfig) (OTPReport, error) {
	rep := OTPReport{Config: cfg}
	p, err := startPlatform(ctx, cfg, app.AllTargets())
	if err != nil {
		return rep, err
	}
	defer p.stop()

	// Warm up connections, pools and the stream files.
	if _, err := closedLoop(ctx, p.send, cfg.Workers, time.Second); err != nil {
		return rep, err
	}
	// The reference publishes producer events (integration_call_completed),
	// so it connects as the producer role, the one allowed to.
	prod, err := p.app.Connector.Connect(ctx, access.Producer)
	if err != nil {
		return rep, err
	}
	rep.Raw, err = RawPublish(ctx, prod, cfg.RawN)
	_ = prod.Close(ctx)
	if err != nil {
		return rep, err
	}
	fmt.Fprintf(cfg.Progress, "raw JetStream PublishAsync+MsgID: %.0f msg/s\n", rep.Raw.Rate())
	// The incident projection folds the reference's events too: let it
	// catch up before measuring.
	if err := waitFolded(ctx, p, 2*time.Minute); err != nil {
		return rep, err
	}
	// The fixed rate runs before saturation, so that it measures the
	// platform at that rate, not the backlog and garbage the saturation
	// phase leaves behind.
	if rep.Fixed, err = openLoop(ctx, p.send, cfg.Rate, cfg.RateDuration); err != nil {
		return rep, err
	}
	fmt.Fprintf(cfg.Progress, "fixed %d/s: %.0f OTP/s, p50 %s p99 %s max %s, %d errors\n", cfg.Rate,
		rep.Fixed.Rate(), rep.Fixed.P50, rep.Fixed.P99, rep.Fixed.Max, rep.Fixed.Errors)
	if rep.Sustained, err = closedLoop(ctx, p.send, cfg.Workers, cfg.Duration); err != nil {
		return rep, err
	}
	fmt.Fprintf(cfg.Progress, "sustained (%d clients): %.0f OTP/s, p50 %s p99 %s, %d errors\n", cfg.Workers,
		rep.Sustained.Rate(), rep.Sustained.P50, rep.Sustained.P99, rep.Sustained.Errors)
	return rep, nil
}

// openServer starts an open embedded server (no operator mode: it checks
// neither credentials nor permissions) under dir, as bus.Open does for the
// benchmarks' private servers, and writes the roles' credentials next to
// it: the platform connects exactly as it does to a secure server (each
// role with its own credentials and inbox prefix), and the server ignores
// them. Only OTPConfig.NoAuth reaches it; herald serve cannot.
func openServer(dir string) (*server.Server, string, error) {
	cat, err := event.NewCatalog()
	if err != nil {
		return nil, "", err
	}
	table, err := access.Table(cat)
	if err != nil {
		return nil, "", err
	}
	creds, err := access.Ensure(filepath.Join(dir, "creds"), table)
	if err != nil {
		return nil, "", err
	}
	srv, err := bus.StartServer(bus.ServerConfig{StoreDir: filepath.Join(dir, "jetstream"), Listen: "127.0.0.1:0"}, nil)
	if err != nil {
		return nil, "", err
	}
	return srv, creds.Dir, nil
}

type sender func() (time.Duration, error)

// recorder collects latencies from many goroutines.
type recorder struct {
	mu      sync.Mutex
	lat     []time.Duration
	errs    int
	pending int
	slowest time.Duration // of every answer, pending ones included
	first   string
}

func (r *recorder) add(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slowest = max(r.slowest, d)
	if errors.Is(err, errPending) {
		r.pending++
		return
	}
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
	l := OTPPhase{OK: len(r.lat), Errors: r.errs, Pending: r.pending, Slowest: r.slowest, FirstError: r.first,
		Elapsed: time.Since(t.wall), CPU: cpuTime() - t.cpu}
	if len(r.lat) == 0 {
		return l
	}
	slices.Sort(r.lat)
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
	server := "embedded, operator mode (every service on its role's credentials)"
	switch {
	case c.Cluster != nil:
		server = "external cluster, operator mode, TLS"
	case c.NoAuth:
		server = "open embedded server (no authentication: reference)"
	}
	fmt.Fprintf(w, "| NATS server | %s |\n", server)
	fmt.Fprintf(w, "| raw JetStream PublishAsync+MsgID (same server, same run) | %.0f msg/s |\n", r.Raw.Rate())
	s := r.Sustained
	fmt.Fprintf(w, "| sustained OTP/s (%d clients, sync send, sim latency %s, %s) | %.0f OTP/s (%d errors) |\n",
		c.Workers, c.SimLatency, c.Duration, s.Rate(), s.Errors)
	fmt.Fprintf(w, "| latency at saturation p50 / p99 | %s / %s |\n", ms(s.P50), ms(s.P99))
	fmt.Fprintf(w, "| CPU per OTP at saturation (whole process) | %.0f core-µs |\n", float64(s.CPU.Microseconds())/float64(max(s.OK, 1)))
	f := r.Fixed
	fmt.Fprintf(w, "| fixed rate %d/s for %s: achieved | %.0f OTP/s (%d errors) |\n", c.Rate, c.RateDuration, f.Rate(), f.Errors)
	fmt.Fprintf(w, "| latency at %d/s p50 / p99 / max | %s / %s / %s |\n", c.Rate, ms(f.P50), ms(f.P99), ms(f.Max))
	for _, l := range []struct {
		name  string
		phase OTPPhase
	}{{"fixed rate", f}, {"sustained", s}} {
		if l.phase.Pending > 0 {
			fmt.Fprintf(w, "| %s: answered 202 pending (outcome later than the sync timeout) | %d |\n", l.name, l.phase.Pending)
		}
		if l.phase.FirstError != "" {
			fmt.Fprintf(w, "| %s: first error | %s |\n", l.name, strings.ReplaceAll(l.phase.FirstError, "|", "/"))
		}
	}
	fmt.Fprintf(w, "\nGoals: ≥ 5,000 OTP/s sustained: %s; p99 ≤ 10 ms at 1,000 OTP/s: %s.\n",
		verdict(s.Rate() >= 5000), verdict(f.P99 <= 10*time.Millisecond))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// waitFolded waits until the incident projection has applied every event
// EVENTS holds now (herald_incident_last_seq).
func waitFolded(ctx context.Context, p *platform, d time.Duration) error {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	s, err := p.app.Bus.JS.Stream(sctx, streams.Events)
	cancel()
	if err != nil {
		return err
	}
	last := float64(s.CachedInfo().State.LastSeq)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if m, err := metrics(ctx, p, "herald_incident_last_seq"); err == nil && m["herald_incident_last_seq"] >= last {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("the incident projection did not fold EVENTS up to %.0f within %s", last, d)
}

// metrics reads the named unlabelled metrics from the process's /metrics.
func metrics(ctx context.Context, p *platform, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.app.HTTP.URL()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(value, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("%s missing from /metrics", n)
		}
	}
	return out, nil
}
