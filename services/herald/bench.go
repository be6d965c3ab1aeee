package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/pkg/bus"
	"github.com/heraldhq/herald/pkg/event"
	"github.com/heraldhq/herald/pkg/incident"
	"github.com/heraldhq/herald/services/herald/bench"
	"github.com/heraldhq/herald/services/incidents"
	"github.com/heraldhq/herald/streams"
)

func benchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Herald against raw JetStream on this machine",
		Long: `Benchmarks run on a fresh embedded server in a temporary directory and
compare Herald with raw JetStream measured in the same run.`,
	}
	cmd.AddCommand(benchBusCmd(e), benchOTPCmd(e), benchIncidentsCmd(e))
	return cmd
}

func benchBusCmd(e *env) *cobra.Command {
	var (
		n, rounds int
		sync      string
	)
	cmd := &cobra.Command{
		Use:   "bus",
		Short: "Typed publish and consume against raw PublishAsync and Consume+Ack",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1000 || rounds < 1 {
				return usagef("--events must be at least 1000 and --rounds at least 1")
			}
			cfg := bus.Config{Listen: "127.0.0.1:0", Sync: sync}
			if err := cfg.Validate(); err != nil {
				return usagef("--sync: %v", err)
			}
			dir, err := os.MkdirTemp("", "herald-bench")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cat, err := event.NewCatalog()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Hour)
			defer cancel()
			b, err := bus.Open(ctx, cfg, dir, "herald-bench", cat, nil, nil)
			if err != nil {
				return err
			}
			defer b.Shutdown(context.Background())
			defs, err := streams.Load(streams.DefaultConfig())
			if err != nil {
				return err
			}
			if _, err := streams.Apply(ctx, b.JS, defs, 1); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "benchmarking %d events x %d rounds (sync: %s)…\n", n, rounds, sync)
			r, err := bench.CompareBus(ctx, b, n, rounds, e.stderr)
			if err != nil {
				return err
			}
			r.Write(e.stdout)
			return nil
		},
	}
	cmd.Flags().IntVar(&n, "events", 200_000, "events per round")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "rounds (medians are reported)")
	cmd.Flags().StringVar(&sync, "sync", "default", "fsync policy: default, always, or a duration")
	return cmd
}

func benchOTPCmd(e *env) *cobra.Command {
	cfg := bench.DefaultOTPConfig()
	cmd := &cobra.Command{
		Use:   "otp",
		Short: "POST /v1/otp/send against the simulated provider, the whole platform in this process",
		Long: `Starts the whole platform in this process (embedded JetStream in a temporary
directory and every service: dispatcher, provider adapter on the simulated
provider, incident projection, notifier on its console sink; HTTP on 127.0.0.1)
and sends OTPs through real HTTP: first the raw JetStream async publish rate on
the same server (the reference), then the latency at a fixed --rate (open loop),
then the sustained rate with --workers synchronous clients. Every request uses a
new phone number, so per-phone limits stay on. The services connect with their
roles' credentials to the embedded server in operator mode, as herald serve
does; --no-auth runs the same platform and clients on an open server of the
benchmark's own instead, to measure what authentication costs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Workers < 1 || cfg.Rate < 1 || cfg.Duration < time.Second || cfg.RateDuration < time.Second || cfg.RawN < 1000 {
				return usagef("--workers and --rate must be positive, durations at least 1s, --raw at least 1000")
			}
			cfg.Progress = e.stderr
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Hour)
			defer cancel()
			fmt.Fprintf(e.stderr, "benchmarking OTP sends: %s with %d clients, then %d/s for %s…\n",
				cfg.Duration, cfg.Workers, cfg.Rate, cfg.RateDuration)
			r, err := bench.RunOTP(ctx, cfg)
			if err != nil {
				return err
			}
			r.Write(e.stdout)
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the sustained phase")
	f.IntVar(&cfg.Workers, "workers", cfg.Workers, "concurrent synchronous clients in the sustained phase")
	f.IntVar(&cfg.Rate, "rate", cfg.Rate, "requests per second of the fixed-rate phase")
	f.DurationVar(&cfg.RateDuration, "rate-duration", cfg.RateDuration, "length of the fixed-rate phase")
	f.DurationVar(&cfg.SimLatency, "sim-latency", cfg.SimLatency, "the simulated provider's answer time")
	f.IntVar(&cfg.RawN, "raw", cfg.RawN, "events of the raw JetStream reference")
	f.BoolVar(&cfg.NoAuth, "no-auth", false, "run on an open server of the benchmark's own (no operator mode, no permission checks): the reference for the cost of security")
	return cmd
}

// benchIncidentsOptions are herald bench incidents' flags.
type benchIncidentsOptions struct {
	n, rounds, groups, trials int
	sync                      string
}

func benchIncidentsCmd(e *env) *cobra.Command {
	o := &benchIncidentsOptions{}
	cmd := &cobra.Command{
		Use:   "incidents",
		Short: "Incident projection: rebuild rate against a raw ordered consumer, memory, live detection latency",
		Long: `Three measurements of the incident projection with the default rules:

1. memory: a projection with --groups active groups (each with events in its
   window, a pending severity and an open incident), live heap and process RSS;
2. rebuild: --events events written to EVENTS, then folded from the start into
   a fresh projection, against a raw OrderedConsumer reading the same stream
   (medians of --rounds interleaved rounds, one embedded server);
3. latency: a live incident service on a fresh server; from the moment a P1
   condition becomes true to incident_opened arriving from INCIDENTS, when the
   completing event is published and when only the wall clock completes it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context(), e) },
	}
	f := cmd.Flags()
	f.IntVar(&o.n, "events", 1_000_000, "events in EVENTS to rebuild from")
	f.IntVar(&o.rounds, "rounds", 3, "rounds (medians are reported)")
	f.IntVar(&o.groups, "groups", 100_000, "active groups for the memory measurement (0 to skip)")
	f.IntVar(&o.trials, "latency-trials", 20, "live detection trials of each kind (0 to skip)")
	f.StringVar(&o.sync, "sync", "default", "fsync policy: default, always, or a duration")
	return cmd
}

func (o *benchIncidentsOptions) run(ctx context.Context, e *env) error {
	if o.n < 1000 || o.rounds < 1 || o.groups < 0 || o.trials < 0 {
		return usagef("--events must be at least 1000, --rounds at least 1")
	}
	cfg := bus.Config{Listen: "127.0.0.1:0", Sync: o.sync}
	if err := cfg.Validate(); err != nil {
		return usagef("--sync: %v", err)
	}
	cat, err := event.NewCatalog()
	if err != nil {
		return err
	}
	rules, err := incident.DefaultRules(cat)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Hour)
	defer cancel()
	var report bench.IncidentReport
	if o.groups > 0 {
		fmt.Fprintf(e.stderr, "memory: building %d active groups…\n", o.groups)
		report.Memory = activeGroupsMemory(cat, rules, o.groups)
	}
	if err := o.rebuild(ctx, e, cfg, cat, rules, &report); err != nil {
		return err
	}
	if o.trials > 0 {
		fmt.Fprintf(e.stderr, "latency: %d trials…\n", o.trials)
		if report.Latency, err = o.latency(ctx, cfg, cat); err != nil {
			return err
		}
	}
	report.Write(e.stdout)
	return nil
}

// activeGroupsMemory measures a projection with that many active groups,
// then gives its memory back before the other measurements.
func activeGroupsMemory(cat *event.Catalog, rules *incident.Rules, groups int) bench.MemoryResult {
	m, eng := bench.ActiveGroups(cat, rules, groups)
	runtime.KeepAlive(eng)
	eng = nil
	runtime.GC()
	debug.FreeOSMemory()
	return m
}

// rebuild writes --events events and folds them from the start, --rounds
// times, against a raw ordered consumer, on a server of its own.
func (o *benchIncidentsOptions) rebuild(ctx context.Context, e *env, cfg bus.Config, cat *event.Catalog, rules *incident.Rules, report *bench.IncidentReport) error {
	b, done, err := openBenchBus(ctx, cfg, cat, "herald-bench")
	if err != nil {
		return err
	}
	defer done()
	fmt.Fprintf(e.stderr, "rebuild: writing %d events…\n", o.n)
	last, err := bench.IncidentLog(ctx, b, o.n, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), e.stderr)
	if err != nil {
		return err
	}
	report.Events = last
	report.Rebuild.Name = "rebuild"
	for i := range o.rounds {
		raw, err := bench.RawReplay(ctx, b, last)
		if err != nil {
			return err
		}
		reb, eng, transitions, err := bench.IncidentRebuild(ctx, b, rules)
		if err != nil {
			return err
		}
		report.Rebuild.Raw, report.Rebuild.Typed = append(report.Rebuild.Raw, raw), append(report.Rebuild.Typed, reb)
		report.Transitions, report.Incidents, report.Invalid = transitions, len(eng.Incidents()), eng.Invalid()
		fmt.Fprintf(e.stderr, "round %d/%d: raw %.0f ev/s, rebuild %.0f ev/s (%.0f %%)\n", i+1, o.rounds, raw.Rate(), reb.Rate(), reb.Rate()/raw.Rate()*100)
	}
	return nil
}

// latency runs a live incident service on a fresh server and measures
// --latency-trials detections.
func (o *benchIncidentsOptions) latency(ctx context.Context, cfg bus.Config, cat *event.Catalog) (bench.LatencyResult, error) {
	lb, done, err := openBenchBus(ctx, cfg, cat, "herald-bench-latency")
	if err != nil {
		return bench.LatencyResult{}, err
	}
	defer done()
	lr, err := incident.ParseRules("latency rules", []byte(bench.LatencyRules), cat)
	if err != nil {
		return bench.LatencyResult{}, err
	}
	off := false
	icfg := incidents.DefaultConfig()
	icfg.DefaultRules, icfg.Rules = &off, lr.List()
	s, err := incidents.New(icfg, lb, nil, nil)
	if err != nil {
		return bench.LatencyResult{}, err
	}
	if err := s.Start(ctx); err != nil {
		return bench.LatencyResult{}, err
	}
	defer s.Stop(context.Background())
	return bench.MeasureLatency(ctx, lb, o.trials)
}

// openBenchBus starts an embedded server in a temporary directory, with
// Herald's streams; done shuts it down and removes the directory.
func openBenchBus(ctx context.Context, cfg bus.Config, cat *event.Catalog, name string) (*bus.Bus, func(), error) {
	dir, err := os.MkdirTemp("", "herald-bench")
	if err != nil {
		return nil, nil, err
	}
	b, err := bus.Open(ctx, cfg, dir, name, cat, nil, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	done := func() { _ = b.Shutdown(context.Background()); os.RemoveAll(dir) }
	defs, err := streams.Load(streams.DefaultConfig(), extraStreamDefs()...)
	if err == nil {
		_, err = streams.Apply(ctx, b.JS, defs, 1)
	}
	if err != nil {
		done()
		return nil, nil, err
	}
	return b, done, nil
}
