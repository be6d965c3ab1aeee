package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/heraldhq/herald/services/herald/app"
	"github.com/heraldhq/herald/streams"
)

// HAConfig sizes the three-server benchmark.
type HAConfig struct {
	// OTP sizes the sustained and fixed-rate phases, run on one embedded
	// server and on the cluster in the same run.
	OTP OTPConfig
	// KillRate is the open-loop rate of sends while the leader of EVENTS is
	// killed: Before the kill, Down while it is away, After its restart
	// began.
	KillRate            int
	Before, Down, After time.Duration
	// Trials of the standbys' takeover.
	Trials   int
	Progress io.Writer
}

// DefaultHAConfig is what BenchmarkHA runs.
func DefaultHAConfig() HAConfig {
	o := DefaultOTPConfig()
	o.Duration, o.RateDuration, o.Rate, o.RawN = 10*time.Second, 10*time.Second, 200, 50_000
	return HAConfig{OTP: o, KillRate: 100, Before: 3 * time.Second, Down: 5 * time.Second, After: 10 * time.Second,
		Trials: 3, Progress: io.Discard}
}

// KillPhase is the load through the loss of the leader of EVENTS.
type KillPhase struct {
	Victim string
	// Election is from the kill to EVENTS having a new leader; Restart how
	// long the node took to start again and be current.
	Election, Restart time.Duration
	Load              OTPPhase
}

// Takeover is one trial: from the active process's connections closed at
// once (a crash) to the standby's gauge at 1.
type Takeover struct{ Incident, Notifier time.Duration }

// HAReport is the benchmark's outcome.
type HAReport struct {
	Config            HAConfig
	Single, Clustered OTPReport
	Kill              KillPhase
	Takeovers         []Takeover
}

// RunHA measures the platform on a three-server cluster: sustained OTP/s and
// latency at a fixed rate against one embedded server in the same run; the
// sends while the leader of EVENTS is killed and restarted; the takeover of
// the incident writer and of the active notifier by their standbys.
func RunHA(ctx context.Context, c Cluster, cfg HAConfig) (HAReport, error) {
	rep := HAReport{Config: cfg}
	prog := cfg.Progress
	var err error
	fmt.Fprintln(prog, "one server (embedded, operator mode):")
	one := cfg.OTP
	one.Progress = prog
	if rep.Single, err = RunOTP(ctx, one); err != nil {
		return rep, fmt.Errorf("one server: %w", err)
	}
	fmt.Fprintf(prog, "cluster (%s):\n", c.URLs)
	clustered := one
	clustered.Cluster = &c
	clustered.PhoneBase = 10_000_000
	if rep.Clustered, err = RunOTP(ctx, clustered); err != nil {
		return rep, fmt.Errorf("cluster: %w", err)
	}
	clustered.PhoneBase = 20_000_000
	if rep.Kill, err = killLeader(ctx, c, clustered, cfg); err != nil {
		return rep, fmt.Errorf("kill: %w", err)
	}
	fmt.Fprintf(prog, "kill %s: election %s, restart %s; %d sent, %d pending, %d errors, slowest %s\n", rep.Kill.Victim,
		rep.Kill.Election, rep.Kill.Restart, rep.Kill.Load.OK, rep.Kill.Load.Pending, rep.Kill.Load.Errors, rep.Kill.Load.Slowest)
	standby := clustered
	standby.PhoneBase = 30_000_000
	if rep.Takeovers, err = takeovers(ctx, standby, cfg.Trials, prog); err != nil {
		return rep, fmt.Errorf("takeover: %w", err)
	}
	return rep, nil
}

// killLeader sends at cfg.KillRate (open loop) on the cluster while the
// node leading EVENTS is shut down (the benchmark's stand-in for SIGKILL:
// its connections and routes close at once) and, after cfg.Down, restarted.
func killLeader(ctx context.Context, c Cluster, ocfg OTPConfig, cfg HAConfig) (KillPhase, error) {
	var k KillPhase
	p, err := startPlatform(ctx, ocfg, app.AllTargets())
	if err != nil {
		return k, err
	}
	defer p.stop()
	if _, err := closedLoop(ctx, p.send, 16, time.Second); err != nil {
		return k, err
	}
	type result struct {
		phase OTPPhase
		err   error
	}
	done := make(chan result, 1)
	go func() {
		l, err := openLoop(ctx, p.send, cfg.KillRate, cfg.Before+cfg.Down+cfg.After)
		done <- result{l, err}
	}()
	time.Sleep(cfg.Before)
	if k.Victim, err = eventsLeader(ctx, p); err != nil {
		return k, err
	}
	killed := time.Now()
	c.Kill(k.Victim)
	for k.Election == 0 && time.Since(killed) < cfg.Down {
		if l, err := eventsLeader(ctx, p); err == nil && l != "" && l != k.Victim {
			k.Election = time.Since(killed)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Until(killed.Add(cfg.Down)))
	restart := time.Now()
	c.Restart(k.Victim)
	k.Restart = time.Since(restart)
	r := <-done
	k.Load = r.phase
	return k, r.err
}

func eventsLeader(ctx context.Context, p *platform) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := p.app.Bus.JS.Stream(ctx, streams.Events)
	if err != nil {
		return "", err
	}
	if s.CachedInfo().Cluster == nil {
		return "", errors.New("EVENTS has no cluster information")
	}
	return s.CachedInfo().Cluster.Leader, nil
}

// takeovers runs trials of: an incident and notifier process active, a
// second one standing by; every connection of the active one closed at
// once (what its death does: its leases are not released); the time until
// the standby reports itself active.
func takeovers(ctx context.Context, cfg OTPConfig, trials int, prog io.Writer) ([]Takeover, error) {
	targets := []string{app.Incident, app.Notifier}
	active, err := startPlatform(ctx, cfg, targets)
	if err != nil {
		return nil, err
	}
	defer func() { active.stop() }()
	if err := waitGauges(ctx, active, 60*time.Second, 1, 1); err != nil {
		return nil, fmt.Errorf("the first process never became active: %w", err)
	}
	var out []Takeover
	for i := range trials {
		standby, err := startPlatform(ctx, cfg, targets)
		if err != nil {
			return out, err
		}
		// Ready (its consumers up, the log folded) and standing by.
		if err := waitReady(ctx, standby, 60*time.Second); err != nil {
			standby.stop()
			return out, err
		}
		if err := waitGauges(ctx, standby, 10*time.Second, 0, 0); err != nil {
			standby.stop()
			return out, fmt.Errorf("the standby is not standing by: %w", err)
		}
		crashed := time.Now()
		active.app.Connector.Abort()
		var t Takeover
		deadline := crashed.Add(60 * time.Second)
		for (t.Incident == 0 || t.Notifier == 0) && time.Now().Before(deadline) {
			inc, not, err := gauges(ctx, standby)
			if err == nil {
				if inc == 1 && t.Incident == 0 {
					t.Incident = time.Since(crashed)
				}
				if not == 1 && t.Notifier == 0 {
					t.Notifier = time.Since(crashed)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		active.stop()
		active = standby
		if t.Incident == 0 || t.Notifier == 0 {
			return out, fmt.Errorf("trial %d: no takeover within 60s (incident %s, notifier %s)", i+1, t.Incident, t.Notifier)
		}
		out = append(out, t)
		fmt.Fprintf(prog, "takeover %d/%d: incident writer %s, notifier %s\n", i+1, trials, t.Incident.Round(time.Millisecond), t.Notifier.Round(time.Millisecond))
	}
	return out, nil
}

func waitReady(ctx context.Context, p *platform, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.app.HTTP.URL()+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %s", d)
}

func waitGauges(ctx context.Context, p *platform, d time.Duration, incident, notifier float64) error {
	deadline := time.Now().Add(d)
	var inc, not float64
	var err error
	for time.Now().Before(deadline) {
		if inc, not, err = gauges(ctx, p); err == nil && inc == incident && not == notifier {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("herald_incident_leader %v, herald_notifier_active %v after %s (%v)", inc, not, d, err)
}

// gauges reads the process's herald_incident_leader and
// herald_notifier_active from its /metrics.
func gauges(ctx context.Context, p *platform) (incident, notifier float64, err error) {
	m, err := metrics(ctx, p, "herald_incident_leader", "herald_notifier_active")
	if err != nil {
		return 0, 0, err
	}
	return m["herald_incident_leader"], m["herald_notifier_active"], nil
}

// Write prints the report as Markdown.
func (r HAReport) Write(w io.Writer) {
	c := r.Config.OTP
	fmt.Fprintf(w, "| measure | one server | three servers (R3) |\n|---|---|---|\n")
	fmt.Fprintf(w, "| raw JetStream PublishAsync+MsgID (same run) | %.0f msg/s | %.0f msg/s |\n", r.Single.Raw.Rate(), r.Clustered.Raw.Rate())
	fmt.Fprintf(w, "| sustained OTP/s (%d clients, %s) | %.0f (%d errors) | %.0f (%d errors) |\n", c.Workers, c.Duration,
		r.Single.Sustained.Rate(), r.Single.Sustained.Errors, r.Clustered.Sustained.Rate(), r.Clustered.Sustained.Errors)
	fmt.Fprintf(w, "| CPU per OTP at saturation (whole process) | %.0f core-µs | %.0f core-µs |\n",
		cpuPerOTP(r.Single.Sustained), cpuPerOTP(r.Clustered.Sustained))
	fmt.Fprintf(w, "| at %d/s for %s: p50 / p99 / max | %s / %s / %s | %s / %s / %s |\n", c.Rate, c.RateDuration,
		ms(r.Single.Fixed.P50), ms(r.Single.Fixed.P99), ms(r.Single.Fixed.Max),
		ms(r.Clustered.Fixed.P50), ms(r.Clustered.Fixed.P99), ms(r.Clustered.Fixed.Max))
	k, cfg := r.Kill, r.Config
	fmt.Fprintf(w, "\n| leader of EVENTS killed under %d OTP/s (%s before, %s down, %s after) | value |\n|---|---|\n",
		cfg.KillRate, cfg.Before, cfg.Down, cfg.After)
	fmt.Fprintf(w, "| node killed | %s |\n| new leader of EVENTS after | %s |\n| node restarted and current after | %s |\n",
		k.Victim, ms(k.Election), ms(k.Restart))
	fmt.Fprintf(w, "| sends: sent / pending / errors | %d / %d / %d |\n", k.Load.OK, k.Load.Pending, k.Load.Errors)
	fmt.Fprintf(w, "| send latency p50 / p99 / longest | %s / %s / %s |\n", ms(k.Load.P50), ms(k.Load.P99), ms(k.Load.Slowest))
	if k.Load.FirstError != "" {
		fmt.Fprintf(w, "| first error | %s |\n", k.Load.FirstError)
	}
	if len(r.Takeovers) > 0 {
		var inc, not []time.Duration
		for _, t := range r.Takeovers {
			inc, not = append(inc, t.Incident), append(not, t.Notifier)
		}
		fmt.Fprintf(w, "\n| takeover after the active process's connections close (%d trials) | median | range |\n|---|---|---|\n", len(r.Takeovers))
		fmt.Fprintf(w, "| incident writer (`herald_incident_leader` 1 on the standby) | %s | %s |\n", ms(medianDuration(inc)), durRange(inc))
		fmt.Fprintf(w, "| notifier (`herald_notifier_active` 1 on the standby) | %s | %s |\n", ms(medianDuration(not)), durRange(not))
	}
}

func cpuPerOTP(l OTPPhase) float64 { return float64(l.CPU.Microseconds()) / float64(max(l.OK, 1)) }

func medianDuration(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func durRange(ds []time.Duration) string {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return ms(s[0]) + " – " + ms(s[len(s)-1])
}
